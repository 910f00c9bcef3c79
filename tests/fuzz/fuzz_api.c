/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the input is a sequence of API calls with arbitrary sizes, alignments,
 * flags, counts, ids, descriptors and error codes, run against a model of what each call
 * must return. Every take is checked to be exactly where the model puts it (so: in bounds,
 * aligned, after the previous one, never overlapping), used() and capacity() to agree with
 * the model, every refusal to be one the contract allows, and nothing to leak (fds and
 * Block mappings after each input; heap through LeakSanitizer).
 *
 * Built with clang -fsanitize=fuzzer,address,undefined under -Dfuzz=true (tests/fuzz/run.sh
 * runs it); replay.c runs the seed corpus through it in every build.
 *
 * Adding a layer (the Grid, sharing) is: objects in `struct fz`, a model, ops in `ops[]`,
 * and their cleanup in fz_close_all(). Sizes stay small (MAX_OPEN) so it never OOMs;
 * absurd sizes are still tried, where they must fail before allocating. */
#include <unimem/unimem.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"
#include "pools.h"

#define MAX_OPEN (4u << 20)      /* largest Block the fuzzer really opens */
#define MAX_PINNED (256u << 10)  /* largest pinned one (the rest become UNPINNED) */
#define MAX_OPS 200
#define NBLOCKS 4
#define NTAPES 8 /* own Tapes and Layout Tapes */
#define NLAYOUTS 2
#define NTAKES 32   /* takes remembered per Tape, to check their bytes later */
#define NRANGES 512 /* takes remembered per Tape, to check that none overlaps another */
#define NCHUNKS 4
#define NGRIDS 3
#define MAX_CELLS 1024 /* largest generic Grid opened (in cells) */

#define CHECK(cond, ...)                                                                      \
	do {                                                                                  \
		if (!(cond)) {                                                                \
			fprintf(stderr, "fuzz_api: %s:%d: check failed: %s: ", __FILE__,      \
				__LINE__, #cond);                                             \
			fprintf(stderr, __VA_ARGS__);                                         \
			fputc('\n', stderr);                                                  \
			abort();                                                              \
		}                                                                             \
	} while (0)

/* ---- reading the input ------------------------------------------------------------------ */

struct in {
	const uint8_t *p;
	size_t n;
};

static uint64_t bytes(struct in *in, unsigned k)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < k; i++) {
		v |= (uint64_t)(in->n ? *in->p : 0) << (8 * i);
		if (in->n)
			in->p++, in->n--;
	}
	return v;
}

static uint8_t u8(struct in *in)
{
	return (uint8_t)bytes(in, 1);
}

static size_t page(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

/* A size: mostly small or modest, sometimes one of the edges that must be refused. */
static size_t any_size(struct in *in, size_t modest)
{
	uint8_t how = u8(in);
	switch (how % 16) {
	case 0:
		return 0;
	case 1:
		return how >> 4;
	case 2:
		return page() - 1 + (how >> 4 & 3); /* page - 1 .. page + 2 */
	case 3: {
		static const size_t edge[] = { SIZE_MAX, SIZE_MAX - 1, SIZE_MAX / 2, SIZE_MAX / 2 + 1,
					       (size_t)1 << 63, (size_t)1 << 46, (size_t)1 << 40,
					       SIZE_MAX - 4096 + 2, SIZE_MAX - 2 * 4096,
					       (size_t)INT64_MAX, (size_t)INT64_MAX + 1,
					       SIZE_MAX / 4 + 1, SIZE_MAX / 8 + 1, UINT32_MAX };
		return edge[(how >> 4) % (sizeof edge / sizeof edge[0])];
	}
	case 4:
		return (size_t)bytes(in, 8); /* anything */
	case 5:
	case 6:
		return (size_t)bytes(in, 1);
	default:
		return (size_t)bytes(in, 4) % (modest + 1);
	}
}

/* An alignment: mostly a power of two, sometimes not. */
static size_t any_align(struct in *in)
{
	uint8_t how = u8(in);
	switch (how % 8) {
	case 0:
		return 0;
	case 1:
		return (size_t)bytes(in, 8);
	case 2:
		return ((size_t)1 << (how >> 3 & 63)) + 1 + (how & 1);
	case 3:
		return (size_t)1 << (how >> 2 & 63);
	default:
		return (size_t)1 << (how >> 3 & 15); /* 1 .. 32 KiB */
	}
}

static unsigned any_flags(struct in *in)
{
	uint8_t how = u8(in);
	if (how % 8 == 0)
		return (unsigned)bytes(in, 4); /* unknown bits too */
	return how >> 3 & 7; /* UNPINNED, HUGE, PRIVATE */
}

/* A pointer for calls that must refuse foreign ones (unimem_gpu_ptr, the Grid's give):
 * NULL, inside or just past a live Block at any offset, or anything at all. */
static void *any_pointer(struct in *in, void *base, size_t size)
{
	uint8_t how = u8(in);
	uint64_t off = bytes(in, 4);
	switch (how % 4) {
	case 0:
		return NULL;
	case 1:
		return base ? (unsigned char *)base + (size ? off % size : 0) : NULL;
	case 2:
		return base ? (unsigned char *)base + size + off % 4096 : NULL;
	default:
		return (void *)(uintptr_t)bytes(in, 8);
	}
}

/* ---- the model ----------------------------------------------------------------------- */

struct mtake {
	unsigned char *p;
	size_t size;
	unsigned char tag;
};

struct mtape {
	unimem_tape *t; /* NULL: free slot */
	int layout;     /* index of the owning Layout, -1 for a Tape of its own */
	unsigned char *base;
	size_t cap, used;
	struct mtake takes[NTAKES]; /* the latest takes since the last clear */
	unsigned ntakes, next;
	struct mtake ranges[NRANGES]; /* every take with bytes since the last clear */
	unsigned nranges;
};

struct mchunk {
	int tape; /* slot of its Tape, -1: free */
	unimem_tape_chunk c;
};

/* A Grid, generic or one of the generated pools, through one struct pool_ops (pools.h). */

struct mgrid {
	void *g; /* NULL: free slot */
	const struct pool_ops *ops;
	unsigned char *base;
	size_t cell, count, out;
	unsigned char held[MAX_CELLS > 4096 ? MAX_CELLS : 4096]; /* tag of a cell out, 0 free */
};

struct mblock {
	unimem_block *b;
	size_t asked;
	unsigned flags;
};

struct fz {
	struct mblock blocks[NBLOCKS];
	struct mtape tapes[NTAPES];
	unimem_layout *layouts[NLAYOUTS];
	int layout_tapes[NLAYOUTS][3]; /* tape slots: weights, scratch, history */
	int sock[2];                   /* a connected pair for send/recv */
	unsigned pending;              /* Blocks sent and not yet received */
	unsigned char tag;
	struct mchunk chunks[NCHUNKS];
	struct mgrid grids[NGRIDS];
};

static bool pow2(size_t x)
{
	return x && !(x & (x - 1));
}

/* The flags of unimem_block_open() (and the opens over it): any other bit is refused. */
#define KNOWN_BLOCK_FLAGS (UNIMEM_BLOCK_UNPINNED | UNIMEM_BLOCK_HUGE | UNIMEM_BLOCK_PRIVATE)

/* What unimem_block_open() must do with these arguments: 0 when it may succeed. */
static int open_refusal(size_t bytes, unsigned flags)
{
	if (bytes == 0 || (flags & ~(unsigned)KNOWN_BLOCK_FLAGS) ||
	    bytes > SIZE_MAX - (page() - 1))
		return -EINVAL;
	return 0;
}

/* Absurd sizes may only fail; others are opened only up to MAX_OPEN. */
static size_t tame(size_t bytes)
{
	return bytes > MAX_OPEN && bytes < ((size_t)1 << 40) ? bytes % MAX_OPEN + 1 : bytes;
}

static unsigned tame_flags(size_t bytes, unsigned flags)
{
	return bytes > MAX_PINNED ? flags | UNIMEM_BLOCK_UNPINNED : flags;
}

static void check_open_error(int err, int must, size_t bytes, unsigned flags)
{
	if (must) {
		CHECK(err == must, "open(%zu, %#x) gave %d, the contract says %d", bytes, flags, err,
		      must);
		return;
	}
	/* Otherwise only what the system may refuse, and only for sizes it cannot back. */
	CHECK(err == 0 || err == -ENOMEM || err == -EPERM || err == -EMFILE,
	      "open(%zu, %#x) gave %d", bytes, flags, err);
	CHECK(err != -ENOMEM || bytes > MAX_OPEN, "open(%zu, %#x) ran out of memory", bytes, flags);
	CHECK(err != -EPERM || !(flags & UNIMEM_BLOCK_UNPINNED), "unpinned open(%zu) gave -EPERM",
	      bytes);
}

static void check_block(const unimem_block *b, size_t asked, unsigned flags)
{
	size_t size = unimem_block_size(b), ps = unimem_block_page_size(b);
	unsigned char *p = unimem_block_ptr(b);
	CHECK(p && size >= asked, "size %zu for %zu", size, asked);
	CHECK(ps == page() || ((flags & UNIMEM_BLOCK_HUGE) && ps > page() && pow2(ps)), "page %zu", ps);
	CHECK(size % ps == 0 && (uintptr_t)p % ps == 0, "size %zu, at %p, page %zu", size,
	      (void *)p, ps);
	CHECK(size - asked < ps, "size %zu for %zu with %zu pages", size, asked, ps);
	CHECK(unimem_block_pinned(b) == !(flags & UNIMEM_BLOCK_UNPINNED), "pinned");
	if (flags & UNIMEM_BLOCK_PRIVATE)
		CHECK(unimem_block_fd(b) == -1 && unimem_block_id(b) == 0, "a private Block's fd, id");
	else
		CHECK(unimem_block_fd(b) >= 0, "fd");
	CHECK(unimem_block_handle(b) == NULL, "handle on Linux");
#ifdef UNIMEM_HAVE_BLOCK_TYPE_F32
	CHECK((void *)unimem_block_as_f32(b) == p && unimem_block_len_f32(b) == size / 4, "f32");
#endif
#ifdef UNIMEM_HAVE_BLOCK_TYPE_BF16
	CHECK((void *)unimem_block_as_bf16_mut((unimem_block *)b) == p &&
		      unimem_block_len_bf16(b) == size / 2, "bf16");
#endif
#ifdef UNIMEM_HAVE_BLOCK_TYPE_U16
	CHECK(unimem_block_len_u16(b) == size / 2, "u16");
#endif
}

/* A new Block is zeroed: check its edges and some bytes in between, then mark them. */
static void check_zeroed(unsigned char *p, size_t size, struct in *in)
{
	CHECK(p[0] == 0 && p[size - 1] == 0, "not zeroed at the edges");
	size_t at[4];
	for (int i = 0; i < 4; i++) {
		at[i] = (size_t)bytes(in, 4) % size;
		CHECK(p[at[i]] == 0, "not zeroed at %zu", at[i]);
	}
	for (int i = 0; i < 4; i++)
		p[at[i]] = 0xa5;
	p[0] = p[size - 1] = 0x5a;
}

static int free_block_slot(struct fz *f, uint8_t k)
{
	for (unsigned i = 0; i < NBLOCKS; i++)
		if (!f->blocks[(k + i) % NBLOCKS].b)
			return (int)((k + i) % NBLOCKS);
	return -1;
}

static int free_tape_slot(struct fz *f, uint8_t k)
{
	for (unsigned i = 0; i < NTAPES; i++)
		if (!f->tapes[(k + i) % NTAPES].t)
			return (int)((k + i) % NTAPES);
	return -1;
}

/* A live Tape slot, or -1. */
static int some_tape(struct fz *f, uint8_t k)
{
	for (unsigned i = 0; i < NTAPES; i++)
		if (f->tapes[(k + i) % NTAPES].t)
			return (int)((k + i) % NTAPES);
	return -1;
}

static void track_tape(struct mtape *m, unimem_tape *t, int layout)
{
	memset(m, 0, sizeof *m);
	m->t = t;
	m->layout = layout;
	m->base = t->base;
	m->cap = unimem_tape_capacity(t);
	m->used = unimem_tape_used(t);
	CHECK(m->used == 0, "a new Tape has used() %zu", m->used);
}

/* The bytes of every remembered take still hold their tag. */
static void check_takes(struct fz *f)
{
	for (unsigned i = 0; i < NTAPES; i++) {
		struct mtape *m = &f->tapes[i];
		if (!m->t)
			continue;
		for (unsigned k = 0; k < m->ntakes; k++) {
			struct mtake *x = &m->takes[k];
			for (size_t j = 0; j < x->size; j += 1 + x->size / 16)
				CHECK(x->p[j] == x->tag, "take %p+%zu byte %zu overwritten", (void *)x->p,
				      x->size, j);
			if (x->size)
				CHECK(x->p[x->size - 1] == x->tag, "last byte of take %p+%zu overwritten",
				      (void *)x->p, x->size);
		}
	}
}

/* Where the model puts a take of `size` at `align`, or NULL when it must be refused. */
static unsigned char *model_take(const struct mtape *m, size_t size, size_t align)
{
	if (!pow2(align) || size > m->cap || align > m->cap || m->used > m->cap)
		return NULL;
	uintptr_t at = (uintptr_t)m->base + m->used;
	uintptr_t start = (at + align - 1) & ~(uintptr_t)(align - 1);
	size_t need = (size_t)(start - at) + size;
	if (need > m->cap - m->used)
		return NULL;
	return (unsigned char *)start;
}

static void book_range(struct fz *f, struct mtape *m, unsigned char *got, size_t size,
		       size_t align, const char *how);

/* Check a take against the model and book it. */
static void booked_take(struct fz *f, struct mtape *m, unsigned char *got, unsigned char *want,
			size_t size, size_t align, const char *how)
{
	CHECK(got == want, "%s(%zu, %zu) gave %p, the model %p (used %zu of %zu)", how, size, align,
	      (void *)got, (void *)want, m->used, m->cap);
	if (!got) {
		CHECK(unimem_tape_used(m->t) == m->used, "a refused %s moved used() to %zu from %zu", how,
		      unimem_tape_used(m->t), m->used);
		return;
	}
	m->used = (size_t)(got - m->base) + size;
	CHECK(unimem_tape_used(m->t) == m->used, "%s: used() %zu, model %zu", how,
	      unimem_tape_used(m->t), m->used);
	book_range(f, m, got, size, align, how);
}

/* Check a take with bytes against every other take of its Tape since the last clear, and
 * tag it. */
static void book_range(struct fz *f, struct mtape *m, unsigned char *got, size_t size,
		       size_t align, const char *how)
{
	CHECK(got >= m->base && got <= m->base + m->cap && size <= (size_t)(m->base + m->cap - got),
	      "%s(%zu, %zu) gave %p outside the Tape [%p, %p)", how, size, align, (void *)got,
	      (void *)m->base, (void *)(m->base + m->cap));
	CHECK((uintptr_t)got % align == 0, "%s(%zu, %zu) gave %p, misaligned", how, size, align,
	      (void *)got);
	if (!size)
		return;
	for (unsigned k = 0; k < m->nranges; k++) {
		struct mtake *r = &m->ranges[k];
		CHECK(got + size <= r->p || r->p + r->size <= got,
		      "%s(%zu, %zu) gave %p, overlapping an earlier take %p+%zu", how, size, align,
		      (void *)got, (void *)r->p, r->size);
	}
	unsigned char tag = (unsigned char)++f->tag;
	memset(got, tag, size);
	m->takes[m->next++ % NTAKES] = (struct mtake){ got, size, tag };
	if (m->ntakes < NTAKES)
		m->ntakes++;
	if (m->nranges < NRANGES)
		m->ranges[m->nranges++] = (struct mtake){ got, size, tag };
}

/* After a clear: the model's Tape is empty, and its chunks are reset (as the contract
 * asks: a chunk that kept its room would hand out what the Tape hands out again). */
static void rewind_model(struct fz *f, struct mtape *m)
{
	m->used = 0;
	m->ntakes = m->next = m->nranges = 0;
	CHECK(unimem_tape_used(m->t) == 0, "used() %zu after a clear", unimem_tape_used(m->t));
	for (int k = 0; k < NCHUNKS; k++)
		if (f->chunks[k].tape == m - f->tapes)
			unimem_tape_chunk_reset(&f->chunks[k].c);
}

/* A Tape goes away: so do its chunks. */
static void drop_chunks(struct fz *f, int tape)
{
	for (int k = 0; k < NCHUNKS; k++)
		if (f->chunks[k].tape == tape)
			f->chunks[k].tape = -1;
}

/* ---- the operations ------------------------------------------------------------------ */

static void op_block_open(struct fz *f, struct in *in)
{
	int slot = free_block_slot(f, u8(in));
	size_t asked = tame(any_size(in, MAX_OPEN));
	unsigned flags = tame_flags(asked, any_flags(in));
	int must = open_refusal(asked, flags);
	if (u8(in) % 16 == 0) { /* no out-parameter */
		CHECK(unimem_block_open(NULL, asked, flags) == -EINVAL, "open(NULL, ...)");
		return;
	}
	if (slot < 0)
		return;
	unimem_block *b = (unimem_block *)0x1;
	int err = unimem_block_open(&b, asked, flags);
	check_open_error(err, must, asked, flags);
	if (err) {
		CHECK(b == NULL, "out-parameter not NULL after %d", err);
		return;
	}
	check_block(b, asked, flags);
	check_zeroed(unimem_block_ptr(b), unimem_block_size(b), in);
	f->blocks[slot] = (struct mblock){ b, asked, flags };
}

static void op_block_close(struct fz *f, struct in *in)
{
	struct mblock *m = &f->blocks[u8(in) % NBLOCKS];
	unimem_block_close(m->b); /* NULL is a no-op */
	m->b = NULL;
}

static void op_block_accessors(struct fz *f, struct in *in)
{
	struct mblock *m = &f->blocks[u8(in) % NBLOCKS];
	if (!m->b) {
		CHECK(unimem_block_ptr(NULL) == NULL && unimem_block_size(NULL) == 0 &&
			      unimem_block_page_size(NULL) == 0 && !unimem_block_pinned(NULL) &&
			      unimem_block_fd(NULL) == -1 && unimem_block_handle(NULL) == NULL &&
			      unimem_block_id(NULL) == 0,
		      "accessors of NULL");
#ifdef UNIMEM_HAVE_BLOCK_TYPE_F32
		CHECK(unimem_block_as_f32(NULL) == NULL && unimem_block_len_f32(NULL) == 0, "f32 of NULL");
#endif
		return;
	}
	check_block(m->b, m->asked, m->flags);
	unsigned char *p = unimem_block_ptr(m->b);
	size_t size = unimem_block_size(m->b);
	CHECK(p[0] == 0x5a && p[size - 1] == 0x5a, "a Block's bytes changed under it");
}

static void op_block_lookup(struct fz *f, struct in *in)
{
	uint32_t id = (uint32_t)bytes(in, 4);
	struct mblock *m = &f->blocks[u8(in) % NBLOCKS];
	bool own = m->b && unimem_block_id(m->b) && u8(in) & 1;
	if (own)
		id = unimem_block_id(m->b);
	CHECK(unimem_block_lookup(NULL, id) == -EINVAL, "lookup(NULL, %u)", id);
	unimem_block *b = (unimem_block *)0x1;
	int err = unimem_block_lookup(&b, id);
	if (own) {
		/* Our own Block, mapped a second time: the same size and the same bytes. */
		CHECK(err == 0, "lookup of our own Block %#x gave %d", id, err);
		CHECK(unimem_block_size(b) == unimem_block_size(m->b), "looked-up size");
		CHECK(unimem_block_ptr(b) != unimem_block_ptr(m->b), "a second mapping");
		unsigned char *p = unimem_block_ptr(b), *q = unimem_block_ptr(m->b);
		size_t last = unimem_block_size(b) - 1;
		CHECK(p[0] == q[0] && p[last] == q[last], "a looked-up Block shows other bytes");
		unimem_block_close(b);
		CHECK(q[0] == 0x5a, "closing the looked-up Block changed ours");
		return;
	}
	/* Any other id names nothing here, or (rarely) a Block of another process of this
	 * user: that one is only looked at, and closed. */
	CHECK(err == 0 || err == -ENOENT || err == -EACCES || err == -EPERM,
	      "lookup(%#x) gave %d", id, err);
	if (err)
		CHECK(b == NULL, "out-parameter not NULL after %d", err);
	else
		CHECK(unimem_block_size(b) > 0 && unimem_block_ptr(b), "a looked-up Block");
	unimem_block_close(err ? NULL : b);
}

static void op_block_send_recv(struct fz *f, struct in *in)
{
	uint8_t how = u8(in);
	struct mblock *m = &f->blocks[u8(in) % NBLOCKS];
	int bad_fds[] = { -1, 1 << 20, INT_MIN };
	bool ours = how % 2 == 0;
	int fd = bad_fds[how / 2 % 3];
	if (how & 4) {
		int err = unimem_block_send(ours ? f->sock[0] : fd, m->b);
		if (!m->b)
			CHECK(err == -EINVAL, "send of NULL gave %d", err);
		else if (m->flags & UNIMEM_BLOCK_PRIVATE)
			CHECK(err == -EINVAL, "send of a private Block gave %d", err);
		else if (!ours)
			CHECK(err == -EBADF, "send to fd %d gave %d", fd, err);
		else
			CHECK(err == 0, "send over a socketpair gave %d", err);
		if (!err)
			f->pending++;
	} else {
		unimem_block *b = (unimem_block *)0x1;
		int rfd = ours ? f->sock[1] : fd;
		CHECK(unimem_block_recv(NULL, rfd) == -EINVAL, "recv(NULL)");
		int err = unimem_block_recv(&b, rfd);
		if (!ours)
			CHECK(err == -EBADF, "recv from fd %d gave %d", fd, err);
		else if (!f->pending)
			CHECK(err == -EAGAIN, "recv of nothing gave %d", err);
		else
			CHECK(err == 0, "recv of a sent Block gave %d", err);
		if (err) {
			CHECK(b == NULL, "out-parameter not NULL after %d", err);
			return;
		}
		f->pending--;
		CHECK(unimem_block_size(b) > 0 && unimem_block_pinned(b), "a received Block");
		unimem_block_close(b);
	}
}

static void op_gpu(struct fz *f, struct in *in)
{
	struct mblock *m = &f->blocks[u8(in) % NBLOCKS];
	bool no_out = u8(in) & 1;
	void *dev = (void *)0x1;
	CHECK(unimem_gpu_count() >= 0, "gpu count");
	int err = unimem_gpu_map(m->b, no_out ? NULL : &dev);
	CHECK(err <= 0 && err > -4096, "gpu_map gave %d", err);
	if (!m->b || no_out)
		CHECK(err == -EINVAL, "gpu_map with a NULL argument gave %d", err);
	else if (unimem_gpu_count() == 0)
		CHECK(err == -ENODEV, "gpu_map without a GPU gave %d", err);
	if (!err) {
		CHECK(dev != NULL, "map gave no device pointer");
		CHECK(unimem_gpu_unmap(m->b) == 0, "unmap after map");
	} else if (!no_out) {
		CHECK(dev == NULL, "device pointer not NULL after %d", err);
	}
	err = unimem_gpu_unmap(m->b);
	if (!m->b)
		CHECK(err == -EINVAL, "gpu_unmap(NULL) gave %d", err);
	else if (unimem_gpu_count() == 0)
		CHECK(err == -ENODEV, "gpu_unmap without a GPU gave %d", err);
	else
		CHECK(err == 0, "gpu_unmap of a Block that is not mapped gave %d", err);
	/* The device address of any pointer: refused outside the Block (one past it is in). */
	size_t size = unimem_block_size(m->b);
	unsigned char *p = unimem_block_ptr(m->b);
	unsigned char *host = any_pointer(in, p, size);
	no_out = u8(in) % 8 == 0;
	dev = (void *)0x1;
	err = unimem_gpu_ptr(m->b, host, no_out ? NULL : &dev);
	CHECK(err == -EINVAL || err == -ENODEV || err == -ENXIO, "gpu_ptr of an unmapped Block: %d",
	      err);
	if (!m->b || !host || host < p || host > p + size || no_out)
		CHECK(err == -EINVAL, "gpu_ptr(%p) outside [%p, %p] gave %d", (void *)host, (void *)p,
		      (void *)(p + size), err);
	if (!no_out)
		CHECK(dev == NULL, "device pointer not NULL after %d", err);
}

static void op_tape_start(struct fz *f, struct in *in)
{
	int slot = free_tape_slot(f, u8(in));
	size_t asked = tame(any_size(in, MAX_OPEN));
	unsigned flags = tame_flags(asked, any_flags(in));
	bool plain = u8(in) & 1;
	if (plain)
		flags = tame_flags(asked, 0);
	int must = open_refusal(asked, flags);
	if (slot < 0)
		return;
	unimem_tape *t = (unimem_tape *)0x1;
	int err = plain && !flags ? unimem_tape_start(&t, asked)
				  : unimem_tape_start_flags(&t, asked, flags);
	check_open_error(err, must, asked, flags);
	if (err) {
		CHECK(t == NULL, "out-parameter not NULL after %d", err);
		return;
	}
	const unimem_block *b = unimem_tape_block(t);
	check_block(b, asked, flags);
	CHECK(unimem_tape_capacity(t) == unimem_block_size(b), "capacity %zu, Block %zu",
	      unimem_tape_capacity(t), unimem_block_size(b));
	track_tape(&f->tapes[slot], t, -1);
	CHECK(f->tapes[slot].base == unimem_block_ptr(b), "Tape base");
}

static void op_tape_close(struct fz *f, struct in *in)
{
	int i = some_tape(f, u8(in));
	if (i < 0) {
		unimem_tape_close(NULL);
		return;
	}
	struct mtape *m = &f->tapes[i];
	unimem_tape_close(m->t); /* a Layout's Tape: a no-op */
	if (m->layout < 0) {
		m->t = NULL;
		drop_chunks(f, i);
	}
}

static void op_tape_take(struct fz *f, struct in *in)
{
	int i = some_tape(f, u8(in));
	size_t size = any_size(in, 70000), align = any_align(in);
	bool owned = u8(in) & 1;
	if (i < 0)
		return;
	struct mtape *m = &f->tapes[i];
	unsigned char *want = model_take(m, size, align);
	unsigned char *got = owned ? unimem_tape_take_owned(m->t, size, align)
				   : unimem_tape_take(m->t, size, align);
	booked_take(f, m, got, want, size, align, owned ? "take_owned" : "take");
}

/* The typed takes: count elements at natural alignment; NULL when count * size overflows. */
#define TYPED(name, type)                                                                     \
	case __COUNTER__ - base_: {                                                           \
		bool fits = count <= SIZE_MAX / sizeof(type);                                  \
		unsigned char *want = fits ? model_take(m, count * sizeof(type), _Alignof(type))  \
					   : NULL;                                             \
		unsigned char *got = (unsigned char *)unimem_tape_take_##name(m->t, count);    \
		booked_take(f, m, got, want, fits ? count * sizeof(type) : 0, _Alignof(type),  \
			    "take_" #name);                                                    \
		return;                                                                       \
	}

static void op_tape_take_typed(struct fz *f, struct in *in)
{
	int i = some_tape(f, u8(in));
	uint8_t which = u8(in);
	size_t count = any_size(in, 20000);
	if (i < 0)
		return;
	struct mtape *m = &f->tapes[i];
	enum { base_ = __COUNTER__ + 1 };
	switch (which % 11) {
#ifdef UNIMEM_HAVE_BLOCK_TYPE_F32
		TYPED(f32, float)
#endif
#ifdef UNIMEM_HAVE_BLOCK_TYPE_F64
		TYPED(f64, double)
#endif
#ifdef UNIMEM_HAVE_BLOCK_TYPE_BF16
		TYPED(bf16, unimem_bf16)
#endif
#ifdef UNIMEM_HAVE_BLOCK_TYPE_U8
		TYPED(u8, uint8_t)
#endif
#ifdef UNIMEM_HAVE_BLOCK_TYPE_I8
		TYPED(i8, int8_t)
#endif
#ifdef UNIMEM_HAVE_BLOCK_TYPE_U16
		TYPED(u16, uint16_t)
#endif
#ifdef UNIMEM_HAVE_BLOCK_TYPE_I16
		TYPED(i16, int16_t)
#endif
#ifdef UNIMEM_HAVE_BLOCK_TYPE_U32
		TYPED(u32, uint32_t)
#endif
#ifdef UNIMEM_HAVE_BLOCK_TYPE_I32
		TYPED(i32, int32_t)
#endif
#ifdef UNIMEM_HAVE_BLOCK_TYPE_U64
		TYPED(u64, uint64_t)
#endif
#ifdef UNIMEM_HAVE_BLOCK_TYPE_I64
		TYPED(i64, int64_t)
#endif
	default:
		return;
	}
}

static void op_tape_clear(struct fz *f, struct in *in)
{
	int i = some_tape(f, u8(in));
	if (i < 0)
		return;
	check_takes(f);
	unimem_tape_clear(f->tapes[i].t);
	rewind_model(f, &f->tapes[i]);
}

static void op_tape_query(struct fz *f, struct in *in)
{
	int i = some_tape(f, u8(in));
	CHECK(unimem_tape_block(NULL) == NULL, "tape_block(NULL)");
	if (i < 0)
		return;
	struct mtape *m = &f->tapes[i];
	CHECK(unimem_tape_used(m->t) == m->used, "used() %zu, model %zu", unimem_tape_used(m->t),
	      m->used);
	CHECK(unimem_tape_capacity(m->t) == m->cap, "capacity");
	CHECK(unimem_tape_block(m->t) != NULL, "tape_block");
	check_takes(f);
}

static void op_layout_open(struct fz *f, struct in *in)
{
	uint8_t k = u8(in);
	size_t w = tame(any_size(in, 1 << 20)), s = tame(any_size(in, 1 << 20)),
	       h = tame(any_size(in, 1 << 20));
	unsigned flags = any_flags(in);
	bool plain = u8(in) & 1;
	if (plain)
		flags = 0;
	/* The model: each size rounds up to the page; all zero, an overflow or unknown flags
	 * are -EINVAL. */
	size_t pg = page(), r[3] = { w, s, h }, sum = 0;
	int must = 0;
	for (int j = 0; j < 3; j++) {
		if (r[j] > SIZE_MAX - (pg - 1)) {
			must = -EINVAL;
			break;
		}
		r[j] = (r[j] + pg - 1) / pg * pg;
		if (r[j] > SIZE_MAX - sum) {
			must = -EINVAL;
			break;
		}
		sum += r[j];
	}
	if (!must && sum == 0)
		must = -EINVAL;
	if (!must && sum > MAX_OPEN && sum < ((size_t)1 << 40))
		return; /* too big to really open here */
	if (!must)
		flags = tame_flags(sum, flags);
	if (!must)
		must = open_refusal(sum, flags);
	if (k % 32 == 0) {
		CHECK(unimem_layout_open_flags(NULL, w, s, h, flags) == -EINVAL, "layout open(NULL)");
		return;
	}
	int li = -1;
	for (int j = 0; j < NLAYOUTS; j++)
		if (!f->layouts[(k + j) % NLAYOUTS])
			li = (k + j) % NLAYOUTS;
	int slots[3], n = 0;
	for (int j = 0; j < NTAPES && n < 3; j++)
		if (!f->tapes[j].t)
			slots[n++] = j;
	if (li < 0 || n < 3)
		return;
	unimem_layout *l = (unimem_layout *)0x1;
	int err = plain && !flags ? unimem_layout_open(&l, w, s, h)
				  : unimem_layout_open_flags(&l, w, s, h, flags);
	check_open_error(err, must, sum, flags);
	if (err) {
		CHECK(l == NULL, "out-parameter not NULL after %d", err);
		return;
	}
	const unimem_block *b = unimem_layout_block(l);
	check_block(b, sum, flags);
	unimem_tape *tapes[3] = { unimem_layout_weights(l), unimem_layout_scratch(l),
				  unimem_layout_history(l) };
	unsigned char *at = unimem_block_ptr(b);
	for (int j = 0; j < 3; j++) {
		CHECK(tapes[j] && unimem_tape_block(tapes[j]) == b, "Layout Tape %d", j);
		CHECK(unimem_tape_capacity(tapes[j]) == r[j], "Layout Tape %d capacity %zu for %zu", j,
		      unimem_tape_capacity(tapes[j]), r[j]);
		track_tape(&f->tapes[slots[j]], tapes[j], li);
		CHECK(f->tapes[slots[j]].base == at, "Layout Tape %d not where it should be", j);
		at += r[j];
		f->layout_tapes[li][j] = slots[j];
	}
	f->layouts[li] = l;
}

static void op_layout_clear(struct fz *f, struct in *in)
{
	uint8_t how = u8(in);
	int li = how % NLAYOUTS;
	unimem_layout *l = f->layouts[li];
	if (!l) {
		CHECK(unimem_layout_weights(NULL) == NULL && unimem_layout_scratch(NULL) == NULL &&
			      unimem_layout_history(NULL) == NULL && unimem_layout_block(NULL) == NULL,
		      "Layout accessors of NULL");
		return;
	}
	check_takes(f);
	struct mtape *w = &f->tapes[f->layout_tapes[li][0]], *s = &f->tapes[f->layout_tapes[li][1]],
		     *h = &f->tapes[f->layout_tapes[li][2]];
	size_t wused = w->used, hused = h->used;
	if (how & 2) {
		unimem_layout_clear_talk(l);
		rewind_model(f, h);
	} else {
		unimem_layout_clear_pass(l);
		CHECK(unimem_tape_used(h->t) == hused, "clear_pass moved history");
	}
	rewind_model(f, s);
	CHECK(unimem_tape_used(w->t) == wused, "a clear moved the weights");
	check_takes(f); /* the weights' bytes (and history's after a pass) are intact */
}

static void close_layout(struct fz *f, int li)
{
	unimem_layout_close(f->layouts[li]);
	if (!f->layouts[li])
		return;
	f->layouts[li] = NULL;
	for (int j = 0; j < 3; j++) {
		f->tapes[f->layout_tapes[li][j]].t = NULL;
		drop_chunks(f, f->layout_tapes[li][j]);
	}
}

static void op_layout_close(struct fz *f, struct in *in)
{
	int li = u8(in) % NLAYOUTS;
	check_takes(f);
	if (!f->layouts[li])
		unimem_layout_close(NULL);
	close_layout(f, li);
}

static void op_chunk_init(struct fz *f, struct in *in)
{
	struct mchunk *c = &f->chunks[u8(in) % NCHUNKS];
	int i = some_tape(f, u8(in));
	size_t grab = any_size(in, 1 << 16);
	if (i < 0)
		return;
	unimem_tape_chunk_init(&c->c, f->tapes[i].t, grab);
	c->tape = i;
}

static void op_chunk_take(struct fz *f, struct in *in)
{
	struct mchunk *c = &f->chunks[u8(in) % NCHUNKS];
	size_t size = any_size(in, 40000), align = any_align(in);
	if (c->tape < 0)
		return;
	struct mtape *m = &f->tapes[c->tape];
	unsigned char *got = unimem_tape_chunk_take(&c->c, size, align);
	if (!pow2(align) || size > m->cap)
		CHECK(!got, "chunk_take(%zu, %zu) gave %p", size, align, (void *)got);
	/* Where a chunk take lands depends on its room, not only on the cursor: check it
	 * against every take of the Tape instead, then follow the cursor. */
	if (got)
		book_range(f, m, got, size, align, "chunk_take");
	else if (pow2(align) && align <= m->cap)
		CHECK(model_take(m, size, align) == NULL || unimem_tape_used(m->t) > m->used,
		      "chunk_take(%zu, %zu) refused what the Tape could give", size, align);
	m->used = unimem_tape_used(m->t);
}

static void op_chunk_reset(struct fz *f, struct in *in)
{
	struct mchunk *c = &f->chunks[u8(in) % NCHUNKS];
	if (c->tape >= 0)
		unimem_tape_chunk_reset(&c->c);
}

static void op_grid_open(struct fz *f, struct in *in)
{
	struct mgrid *m = &f->grids[u8(in) % NGRIDS];
	uint8_t which = u8(in);
	size_t cell = any_size(in, 8192), count = any_size(in, MAX_CELLS);
	unsigned flags = any_flags(in);
	bool plain = u8(in) & 1;
	const struct pool_ops *ops =
		NPOOLS && which % 4 ? &pool_table[which % NPOOLS] : &generic_grid_ops;
	if (m->g)
		return;
	if (ops->count) {
		cell = ops->cell, count = ops->count;
	} else if (u8(in) % 16 == 0) {
		CHECK(ops->open(NULL, cell, count, flags, plain) == -EINVAL, "grid open(NULL)");
		return;
	}
	/* The model of the generic open's arguments; sizes the fuzzer does not really open
	 * are those it could back but that are too big for it. */
	int must = 0;
	size_t rounded = cell > SIZE_MAX - 63 ? 0 : (cell + 63) & ~(size_t)63;
	if (!ops->count && (cell == 0 || count == 0 || !rounded || count > SIZE_MAX / rounded))
		must = -EINVAL;
	else if (flags & ~(unsigned)KNOWN_BLOCK_FLAGS && !plain)
		must = -EINVAL;
	if (!must && (count > sizeof m->held || (!ops->count && count > MAX_CELLS) ||
		      rounded * count > MAX_OPEN))
		return;
	if (plain)
		flags = 0;
	if (!must && rounded * count > MAX_PINNED) {
		flags |= UNIMEM_BLOCK_UNPINNED;
		plain = false;
	}
	void *g = (void *)0x1;
	int err = ops->open(&g, cell, count, flags, plain);
	if (must) {
		CHECK(err == must, "%s open(%zu, %zu, %#x) gave %d, not %d", ops->name, cell, count,
		      flags, err, must);
		CHECK(g == NULL, "out-parameter not NULL after %d", err);
		return;
	}
	CHECK(err == 0 || err == -EMFILE, "%s open(%zu, %zu, %#x) gave %d", ops->name, cell, count,
	      flags, err);
	if (err)
		return;
	const unimem_block *b = ops->block(g);
	CHECK(b && unimem_block_size(b) >= rounded * count, "%s Block", ops->name);
	CHECK(ops->available(g) == count, "%s: %zu available of %zu", ops->name, ops->available(g),
	      count);
	memset(m, 0, sizeof *m);
	*m = (struct mgrid){ .g = g, .ops = ops, .base = unimem_block_ptr(b), .cell = rounded,
			     .count = count };
	if (ops == &generic_grid_ops) {
		CHECK(unimem_grid_cell_size(g) == rounded && unimem_grid_cells(g) == count,
		      "grid shape %zu x %zu for %zu x %zu", unimem_grid_cell_size(g),
		      unimem_grid_cells(g), rounded, count);
	}
}

static void check_grid(struct mgrid *m)
{
	CHECK(m->ops->available(m->g) == m->count - m->out, "%s: available %zu, model %zu",
	      m->ops->name, m->ops->available(m->g), m->count - m->out);
	for (size_t i = 0; i < m->count; i++)
		if (m->held[i]) {
			unsigned char *c = m->base + i * m->cell;
			CHECK(c[0] == m->held[i] && c[m->cell - 1] == m->held[i],
			      "%s: cell %zu, which is out, was written by someone else", m->ops->name, i);
		}
}

static void op_grid_take(struct fz *f, struct in *in)
{
	struct mgrid *m = &f->grids[u8(in) % NGRIDS];
	unsigned n = u8(in) % 8 + 1;
	if (!m->g)
		return;
	for (unsigned k = 0; k < n; k++) {
		unsigned char *c = m->ops->take(m->g);
		if (m->out == m->count) {
			CHECK(c == NULL, "%s: take from an empty pool gave %p", m->ops->name, (void *)c);
			return;
		}
		CHECK(c, "%s: take refused with %zu of %zu out", m->ops->name, m->out, m->count);
		size_t off = (size_t)(c - m->base);
		CHECK(c >= m->base && off % m->cell == 0 && off / m->cell < m->count &&
			      (uintptr_t)c % 64 == 0,
		      "%s: take gave %p, not a cell of [%p, +%zu x %zu)", m->ops->name, (void *)c,
		      (void *)m->base, m->count, m->cell);
		size_t i = off / m->cell;
		CHECK(!m->held[i], "%s: cell %zu handed out twice", m->ops->name, i);
		unsigned char tag = (unsigned char)(++f->tag | 1);
		m->held[i] = tag;
		c[0] = c[m->cell - 1] = tag;
		m->out++;
	}
}

static void op_grid_give(struct fz *f, struct in *in)
{
	struct mgrid *m = &f->grids[u8(in) % NGRIDS];
	uint8_t how = u8(in);
	size_t pick = (size_t)bytes(in, 2);
	if (!m->g)
		return;
	unsigned char *p;
	size_t span = m->cell * m->count;
	if (how % 4 == 0) { /* anything */
		p = any_pointer(in, m->base, span);
	} else {
		/* A cell's start (out or free), or a byte inside one. */
		p = m->base + pick % m->count * m->cell;
		if (how % 4 == 3)
			p += (size_t)bytes(in, 2) % m->cell;
	}
	int want;
	uintptr_t off = (uintptr_t)p - (uintptr_t)m->base;
	if (!p || p < m->base || off >= span || off % m->cell)
		want = -EINVAL;
	else
		want = m->held[off / m->cell] ? 0 : -EALREADY;
	int err = m->ops->give(m->g, p);
	CHECK(err == want, "%s: give(%p) gave %d, not %d (base %p, %zu x %zu)", m->ops->name,
	      (void *)p, err, want, (void *)m->base, m->count, m->cell);
	if (!err) {
		m->held[off / m->cell] = 0;
		m->out--;
	}
	check_grid(m);
}

static void op_grid_close(struct fz *f, struct in *in)
{
	struct mgrid *m = &f->grids[u8(in) % NGRIDS];
	if (!m->g) {
		unimem_grid_close(NULL);
		return;
	}
	check_grid(m);
	m->ops->close(m->g);
	m->g = NULL;
}

static void op_bf16(struct fz *f, struct in *in)
{
	(void)f;
	uint32_t u = (uint32_t)bytes(in, 4);
	float x;
	memcpy(&x, &u, 4);
	unimem_bf16 h = unimem_bf16_from_f32(x);
	float back = unimem_bf16_to_f32(h);
	uint32_t bb;
	memcpy(&bb, &back, 4);
	CHECK(bb == (uint32_t)h.bits << 16, "bf16 -> f32 is not exact for %#x", h.bits);
	CHECK(h.bits >> 15 == u >> 31, "sign of %#x lost: %#x", u, h.bits);
	if (isnan(x)) {
		CHECK(isnan(back), "NaN %#x became %#x", u, h.bits);
		return;
	}
	/* Nearest of the two neighbours in double, ties to the even one. */
	uint32_t lo = u & 0xffff0000u, hi = lo + 0x10000u;
	float flo, fhi;
	memcpy(&flo, &lo, 4);
	memcpy(&fhi, &hi, 4);
	double dx = x, dlo = flo, dhi = fhi;
	uint16_t want;
	if ((lo & 0x7fffffffu) == 0x7f800000u) {
		want = (uint16_t)(lo >> 16);
	} else {
		if ((hi & 0x7f800000u) == 0x7f800000u)
			dhi = (u >> 31 ? -1.0 : 1.0) * ldexp(1.0, 128);
		double dl = fabs(dx - dlo), dh = fabs(dhi - dx);
		want = (uint16_t)((dl < dh || (dl == dh && !(lo >> 16 & 1)) ? lo : hi) >> 16);
	}
	CHECK(h.bits == want, "bf16 of %#x is %#x, not %#x", u, h.bits, want);
}

static void op_strerror(struct fz *f, struct in *in)
{
	(void)f;
	int err = (int)(uint32_t)bytes(in, 4);
	const char *m = unimem_strerror(err);
	CHECK(m && *m, "strerror(%d)", err);
	char copy[512];
	snprintf(copy, sizeof copy, "%s", m);
	if (err != INT_MIN)
		CHECK(!strcmp(unimem_strerror(-err), copy), "strerror(%d) and (%d) differ", err, -err);
	CHECK(strlen(unimem_version()) >= 5, "version");
}

static const struct {
	const char *name;
	void (*run)(struct fz *f, struct in *in);
} ops[] = {
	{ "block_open", op_block_open },
	{ "block_close", op_block_close },
	{ "block_accessors", op_block_accessors },
	{ "block_lookup", op_block_lookup },
	{ "block_send_recv", op_block_send_recv },
	{ "gpu", op_gpu },
	{ "tape_start", op_tape_start },
	{ "tape_close", op_tape_close },
	{ "tape_take", op_tape_take },
	{ "tape_take", op_tape_take }, /* twice: the op that matters most */
	{ "tape_take_typed", op_tape_take_typed },
	{ "tape_clear", op_tape_clear },
	{ "tape_query", op_tape_query },
	{ "layout_open", op_layout_open },
	{ "layout_clear", op_layout_clear },
	{ "layout_close", op_layout_close },
	{ "bf16", op_bf16 },
	{ "strerror", op_strerror },
	{ "chunk_init", op_chunk_init },
	{ "chunk_take", op_chunk_take },
	{ "chunk_reset", op_chunk_reset },
	{ "grid_open", op_grid_open },
	{ "grid_take", op_grid_take },
	{ "grid_give", op_grid_give },
	{ "grid_give", op_grid_give },
	{ "grid_close", op_grid_close },
};

/* ---- one input ------------------------------------------------------------------------- */

/* Blocks mapped now (memfd mappings in /proc/self/maps). */
static int count_block_maps(void)
{
	FILE *mf = fopen("/proc/self/maps", "re");
	if (!mf)
		return -1;
	char line[512];
	int n = 0;
	while (fgets(line, sizeof line, mf))
		if (strstr(line, "/memfd:unimem"))
			n++;
	fclose(mf);
	return n;
}

static void fz_close_all(struct fz *f)
{
	check_takes(f);
	for (int i = 0; i < NLAYOUTS; i++)
		close_layout(f, i);
	for (int i = 0; i < NTAPES; i++)
		if (f->tapes[i].t) {
			CHECK(f->tapes[i].layout < 0, "a Layout's Tape outlived its Layout");
			unimem_tape_close(f->tapes[i].t);
		}
	for (int i = 0; i < NBLOCKS; i++)
		unimem_block_close(f->blocks[i].b);
	for (int i = 0; i < NGRIDS; i++)
		if (f->grids[i].g) {
			check_grid(&f->grids[i]);
			f->grids[i].ops->close(f->grids[i].g);
		}
	while (f->pending) { /* sent and never received */
		unimem_block *b;
		CHECK(unimem_block_recv(&b, f->sock[1]) == 0, "a sent Block did not arrive");
		unimem_block_close(b);
		f->pending--;
	}
	close(f->sock[0]);
	close(f->sock[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Where there is a GPU, the CUDA driver keeps the fds it opens on first use (/dev/nvidia*)
 * for the life of the process: bring it up once before the first count, so that its fds
 * are part of the rest state and a leak of ours still shows. */
static void warm_up_gpu_driver(void)
{
	static bool done;
	if (done)
		return;
	done = true;
	unimem_block *b;
	void *dev;
	if (unimem_gpu_count() > 0 && unimem_block_open(&b, 4096, UNIMEM_BLOCK_UNPINNED) == 0) {
		if (unimem_gpu_map(b, &dev) == 0)
			unimem_gpu_unmap(b);
		unimem_block_close(b);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	warm_up_gpu_driver();
	int fds_at_rest = count_fds();
	struct in in = { data, size };
	static struct fz f; /* big (the Grids' models): not on the stack */
	memset(&f, 0, sizeof f);
	for (int k = 0; k < NCHUNKS; k++)
		f.chunks[k].tape = -1;
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, f.sock) == 0,
	      "socketpair");
	for (int n = 0; in.n && n < MAX_OPS; n++) {
		uint8_t op = u8(&in);
		ops[op % (sizeof ops / sizeof ops[0])].run(&f, &in);
	}
	fz_close_all(&f);
	CHECK(count_fds() == fds_at_rest, "fd leaked: %d open, %d at rest", count_fds(), fds_at_rest);
	CHECK(count_block_maps() == 0, "%d Block mappings left", count_block_maps());
	return 0;
}
