/* SPDX-License-Identifier: MIT */
/* unimem internals shared between the files of src/. Never installed. */
#ifndef UNIMEM_INTERNAL_H
#define UNIMEM_INTERNAL_H

#include <unimem/unimem.h>

#include <stdatomic.h>

/* Bits of unimem_tape.flags. */
#define UMI_TAPE_OWNS_BLOCK 1u  /* from unimem_tape_start(): closing it closes the Block */
#define UMI_TAPE_BORROWED 2u    /* belongs to a Layout: unimem_tape_close() ignores it */

struct umi_gpu_state;

struct unimem_block {
	unsigned char *ptr;
	size_t size;       /* usable bytes, a multiple of page */
	size_t page;       /* backing page size */
	int fd;            /* memfd (Linux); -1 elsewhere */
	uint32_t id;       /* 0 when the Block has no id */
	bool pinned;
	bool writable;     /* this holder's mapping is writable (false: sealed, read-only) */
	void *handle;      /* IOSurfaceRef on macOS */
	/* GPU mapping, owned by gpu*.c; NULL while not mapped. */
	_Atomic(struct umi_gpu_state *) gpu;
	/* Holders beyond the first (0 from calloc: one holder). A DLPack export is one
	 * more holder until its deleter runs; unimem_block_close() drops one. */
	atomic_uint extra_refs;
};

/* One more holder of b (a DLPack export): the Block stays mapped until every holder
 * has called unimem_block_close(). Thread-safe. */
static inline void umi_block_retain(const unimem_block *b)
{
	atomic_fetch_add_explicit(&((unimem_block *)b)->extra_refs, 1, memory_order_relaxed);
}

/* Drop one holder; true when it was the last, and the caller must tear b down. */
static inline bool umi_block_unref(unimem_block *b)
{
	/* The common case, a Block nobody else holds, takes no read-modify-write. An acquire
	 * load (a plain load on x86) rather than a relaxed one and a fence: the same order,
	 * and one ThreadSanitizer sees (it ignores fences, and reported the free below as
	 * racing the last other holder's fetch-sub). */
	unsigned n = atomic_load_explicit(&b->extra_refs, memory_order_acquire);
	if (n == 0)
		return true;
	return atomic_fetch_sub_explicit(&b->extra_refs, 1, memory_order_acq_rel) == 0;
}

/* Page size of the system, cached. */
size_t umi_page_size(void);

/* Round `n` up to a multiple of the power of two `to`; 0 when that overflows. */
static inline size_t umi_round_up(size_t n, size_t to)
{
	if (n > SIZE_MAX - (to - 1))
		return 0;
	return (n + to - 1) & ~(to - 1);
}

/* Initialise a Tape over [base, base + bytes) of Block b. */
void umi_tape_init(unimem_tape *t, unimem_block *b, unsigned char *base, size_t bytes,
		   uint32_t flags);

/* Drop the GPU mapping of a Block that is being closed (no-op when not mapped). */
void umi_gpu_release(unimem_block *b);

/* The GPU backend's message for a code it returned (positive errno), with what the
 * driver said where the last GPU call of this thread failed with that code; NULL to
 * let unimem_strerror() answer. Thread-safe. */
const char *umi_gpu_strerror(int err);

/* Lock and populate a mapped Block (block_linux.c): 0, -EPERM when RLIMIT_MEMLOCK
 * refuses (noted for unimem_strerror), -ENOMEM. The caller sets b->pinned. */
int umi_block_pin(unimem_block *b);

/* Cross-process sharing (share_linux.c). Longest memfd name, with its NUL. */
#define UMI_SHARE_NAME_MAX 48

/* Give a Block that is being opened its id (b->id; 0 when all are taken) and write
 * the memfd name that carries it into `name`. Thread-safe, no system call beyond
 * getpid(). */
void umi_share_claim(unimem_block *b, char name[UMI_SHARE_NAME_MAX]);

/* Mark b's fd (just opened, sealed) as its creator's live fd of the id: lookup finds
 * only marked fds. Clears b->id when it cannot. */
void umi_share_mark(unimem_block *b);

/* Take the mark off before b's fd is closed (a dup of it may outlive the Block). */
void umi_share_unmark(unimem_block *b);

/* Make a Block of the memfd `fd` (taken over: closed on failure) that a peer handed
 * over: checks it is a Block (-EBADMSG), of the announced size and page (0: any),
 * within `max` bytes (0: no limit; else -EFBIG) and what the machine can back pinned
 * (-ENOMEM), all before touching a page; maps it (read-only when sealed with
 * F_SEAL_FUTURE_WRITE) and pins it like a default open (-EPERM). share_linux.c. */
int umi_share_adopt(unimem_block **out, int fd, uint64_t want, uint64_t want_page, uint32_t id,
		    uint64_t max);

/* Whether the machine could ever back `size` bytes (pinned: in RAM now). */
bool umi_can_back(size_t size, bool pinned);

/* Give b's id back (no-op for ids this process did not claim for b). Call after
 * the memfd is closed. Thread-safe. */
void umi_share_release(unimem_block *b);

/* CPUs this thread may run on that no runnable task holds now: how many helper threads
 * are worth starting (block_linux.c; Linux only). */
long umi_idle_cpus(void);

/* Interop (issue 10). The unimem_dtype of a safetensors dtype name (not NUL-terminated);
 * 0 when unknown. */
int umi_dtype_from_name(const char *name, size_t len);

/* Read [off, off + len) of fd's file into dst, where dst - off is a multiple of 4096:
 * cached pages with pread, the others with O_DIRECT (load.c; flags UNIMEM_READ_*).
 * 0 or a negative errno. */
int umi_read_range(int fd, unsigned char *dst, uint64_t off, size_t len, unsigned flags);

/* Take room for len bytes at `align` from t (NULL when it does not fit), setting *before
 * to the cursor before the take (padding included); give_back moves the cursor from
 * `end` back to `before` only while nothing was taken after (load.c). */
void *umi_tape_take_room(unimem_tape *t, size_t len, size_t align, uint64_t *before);
void umi_tape_give_back(unimem_tape *t, uint64_t before, uint64_t end);

/* open() for reading that never blocks and refuses non-regular files with -EINVAL; an
 * fd or a negative errno (load.c). */
int umi_open_regular(const char *path);

/* Move [p, p + len) to p - s (s < 4096), in parallel chunks where CPUs are idle. */
void umi_shift_down(unsigned char *p, size_t len, size_t s);

/* Whether the range's pages are in the page cache (read with pread alone). */
bool umi_range_cached(int fd, uint64_t off, size_t len);

/* Remember the RLIMIT_MEMLOCK that refused a pin, for unimem_strerror(). */
void umi_note_memlock_refusal(size_t asked);

#endif
