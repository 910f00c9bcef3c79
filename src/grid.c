/* SPDX-License-Identifier: MIT */
/* Grid: the layout in the Block, open, attach, close, available (take and give are inline
 * in <unimem/grid.h>, their slow paths in grid_slow.c, reclaim in grid_reclaim.c). */
#include "grid_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The per-thread entries the inline paths read (grid_pvt.h). */
UNIMEM_API __thread unimem_grid_pvt_tls_entry unimem_grid_pvt_tls[UNIMEM_GRID_PVT_WAYS];

/* ---- this process's handles ---- */

static pthread_mutex_t registry_mutex = PTHREAD_MUTEX_INITIALIZER;
static unimem_grid *registry;
static uint64_t next_gen; /* under registry_mutex */

void umi_grid_registry_lock(void)
{
	pthread_mutex_lock(&registry_mutex);
}

void umi_grid_registry_unlock(void)
{
	pthread_mutex_unlock(&registry_mutex);
}

unimem_grid *umi_grid_registry_first(void)
{
	return registry;
}

/* ---- layout ---- */

/* n rounded up to a multiple of the power of two `to` (64-bit even where size_t is not:
 * umi_round_up's size_t would cut the sums short there; the bounds keep them below 2^63). */
static uint64_t up(uint64_t n, uint64_t to)
{
	return (n + to - 1) & ~(to - 1);
}

int umi_grid_layout_of(uint64_t cell, uint64_t count, struct umi_grid_layout *l)
{
	memset(l, 0, sizeof *l);
	/* Indices are 32-bit (state words, caches); the bounds keep every sum below 2^63. */
	if (cell == 0 || cell % 64 || count == 0 || count >= UINT32_MAX ||
	    cell > (UINT64_C(1) << 62) / count)
		return -EINVAL;
	l->span = cell * count;
	l->words = (count + 63) / 64;
	l->off_bits = l->span;
	/* The state words and the slots start on 128-byte boundaries (see umi_grid_start). */
	l->off_state = up(l->off_bits + l->words * 8, 128);
	l->off_slots = up(l->off_state + count * 4, 128);
	l->cap = UNIMEM_GRID_PVT_CAP(count);
	l->slot_bytes = UNIMEM_GRID_PVT_SLOT_BYTES(l->cap);
	l->off_recs = l->off_slots + (uint64_t)UNIMEM_GRID_PVT_SLOTS * l->slot_bytes;
	l->bytes = l->off_recs + up(UNIMEM_GRID_PVT_RECS * sizeof(unimem_grid_pvt_rec), 64) +
		   UNIMEM_GRID_PVT_HDR_BYTES;
	if (l->bytes > SIZE_MAX)
		return -EINVAL;
	return 0;
}

UNIMEM_STATIC_ASSERT(sizeof(unimem_grid_pvt_hdr) == UNIMEM_GRID_PVT_HDR_BYTES, "grid header");
UNIMEM_STATIC_ASSERT(sizeof(unimem_grid_pvt_slot) == 64 &&
			     UNIMEM_GRID_PVT_SLOT_BYTES(0) == 128 &&
			     UNIMEM_GRID_PVT_SLOT_BYTES(UNIMEM_GRID_PVT_CACHE) == 1152,
		     "grid slot: 64 bytes, then the cache, to a multiple of 128");
UNIMEM_STATIC_ASSERT(UNIMEM_GRID_PVT_RECS <= UNIMEM_GRID_PVT_THIEF &&
			     (UNIMEM_GRID_PVT_STALE & UNIMEM_GRID_PVT_THIEF) > UNIMEM_GRID_PVT_RECS,
		     "a steal token names its thief in its low bits, and never reads as STALE");

/* The inverse of an odd number modulo 2^64 (Newton's iteration: each step doubles the
 * correct low bits; d * d == 1 mod 8 gives 3 to start with). */
static uint64_t odd_inverse(uint64_t d)
{
	uint64_t x = d;
	for (int k = 0; k < 5; k++)
		x *= 2 - d * x;
	return x;
}

/* Fill the handle from a layout over Block b and register it (a record and a gen). */
static int bind(unimem_grid *g, unimem_block *b, uint64_t cell, uint64_t count,
		const struct umi_grid_layout *l, uint32_t flags)
{
	unsigned char *base = unimem_block_ptr(b);
	unsigned shift = (unsigned)__builtin_ctzll((unsigned long long)cell);
	uint64_t odd = cell >> shift;
	memset(g, 0, sizeof *g);
	g->base = base;
	g->state = (uint32_t *)(void *)(base + l->off_state);
	g->cell_size = cell;
	g->count = count;
	g->span = l->span;
	g->odd_inverse = odd_inverse(odd);
	g->odd_limit = UINT64_MAX / odd;
	g->shift = shift;
	umi_grid_process_init();
	g->cap = umi_grid_membarrier_ok() ? l->cap : 0;
	g->bits = (uint64_t *)(void *)(base + l->off_bits);
	g->words = l->words;
	g->slots = (unimem_grid_pvt_slot *)(void *)(base + l->off_slots);
	g->slot_bytes = l->slot_bytes;
	g->recs = (unimem_grid_pvt_rec *)(void *)(base + l->off_recs);
	g->hdr = (unimem_grid_pvt_hdr *)(void *)(base + unimem_block_size(b) - UNIMEM_GRID_PVT_HDR_BYTES);
	g->block = b;
	g->flags = flags;
	int err = umi_grid_claim_record(g);
	if (err)
		return err;
	umi_grid_registry_lock();
	g->gen = ++next_gen;
	g->next = registry;
	registry = g;
	umi_grid_registry_unlock();
	/* Publish the handle to threads that get the pointer without a barrier of their own. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	return 0;
}

int umi_grid_init(unimem_grid *g, size_t cell_size, size_t cells, unsigned flags)
{
	memset(g, 0, sizeof *g);
	if (cell_size == 0 || cells == 0)
		return -EINVAL;
	size_t cell = umi_round_up(cell_size, UNIMEM_CACHE_LINE);
	struct umi_grid_layout l;
	if (!cell || umi_grid_layout_of(cell, cells, &l))
		return -EINVAL;

	unimem_block *b;
	int err = unimem_block_open(&b, (size_t)l.bytes, flags);
	if (err)
		return err;
	unsigned char *base = unimem_block_ptr(b);
	/* The Block is zeroed: every state word 0 (in the pool), every slot and record free.
	 * Set the bits of the cells that exist; those past the last cell stay 0 forever. */
	uint64_t *bits = (uint64_t *)(void *)(base + l.off_bits);
	for (uint64_t w = 0; w < l.words; w++) {
		uint64_t n = cells - w * 64 < 64 ? cells - w * 64 : 64;
		bits[w] = n == 64 ? UINT64_MAX : ((uint64_t)1 << n) - 1;
	}
	for (uint32_t t = 0; t < UNIMEM_GRID_PVT_SLOTS; t++) {
		unimem_grid_pvt_slot *s = (unimem_grid_pvt_slot *)(void *)(base + l.off_slots +
									     (size_t)t * l.slot_bytes);
		s->rover = (uint32_t)umi_grid_start(t, cells, l.cap);
	}
	unimem_grid_pvt_hdr *h = (unimem_grid_pvt_hdr *)(void *)(base + unimem_block_size(b) -
								 UNIMEM_GRID_PVT_HDR_BYTES);
	h->version = UNIMEM_GRID_PVT_VERSION;
	h->hdr_bytes = UNIMEM_GRID_PVT_HDR_BYTES;
	h->block_bytes = unimem_block_size(b);
	h->cell_size = cell;
	h->count = cells;
	h->off_bits = l.off_bits;
	h->off_state = l.off_state;
	h->off_slots = l.off_slots;
	h->off_recs = l.off_recs;
	h->nslots = UNIMEM_GRID_PVT_SLOTS;
	h->nrecs = UNIMEM_GRID_PVT_RECS;
	h->cap = l.cap;
	h->slot_bytes = l.slot_bytes;
	/* The magic last: a Block caught half way is no Grid yet. */
	__atomic_store_n(&h->magic, UNIMEM_GRID_PVT_MAGIC, __ATOMIC_RELEASE);
	err = bind(g, b, cell, cells, &l, UMI_GRID_OWNS_BLOCK);
	if (err) {
		unimem_block_close(b);
		memset(g, 0, sizeof *g);
	}
	return err;
}

int unimem_grid_open_flags(unimem_grid **out, size_t cell_size, size_t cells, unsigned flags)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	unimem_grid *g = aligned_alloc(UNIMEM_CACHE_LINE, sizeof *g);
	if (!g)
		return -ENOMEM;
	int err = umi_grid_init(g, cell_size, cells, flags);
	if (err) {
		free(g);
		return err;
	}
	*out = g;
	return 0;
}

int unimem_grid_open(unimem_grid **out, size_t cell_size, size_t cells)
{
	return unimem_grid_open_flags(out, cell_size, cells, 0);
}

/* Check the header of Block b against its size: 0 and the shape, or -EINVAL / -EPROTO.
 * Works on a copy, so that a peer rewriting the header meanwhile changes nothing. */
static int check_header(unimem_block *b, uint64_t *cell, uint64_t *count, struct umi_grid_layout *l)
{
	size_t size = unimem_block_size(b);
	unsigned char *base = unimem_block_ptr(b);
	if (!base || size < UNIMEM_GRID_PVT_HDR_BYTES || size % 64)
		return -EINVAL;
	unimem_grid_pvt_hdr h;
	memcpy(&h, base + size - UNIMEM_GRID_PVT_HDR_BYTES, sizeof h);
	if (h.magic != UNIMEM_GRID_PVT_MAGIC)
		return -EINVAL;
	if (h.version != UNIMEM_GRID_PVT_VERSION)
		return -EPROTO;
	if (h.hdr_bytes != UNIMEM_GRID_PVT_HDR_BYTES || h.block_bytes != size ||
	    umi_grid_layout_of(h.cell_size, h.count, l) || l->bytes > size ||
	    h.off_bits != l->off_bits || h.off_state != l->off_state ||
	    h.off_slots != l->off_slots || h.off_recs != l->off_recs ||
	    h.nslots != UNIMEM_GRID_PVT_SLOTS || h.nrecs != UNIMEM_GRID_PVT_RECS ||
	    h.cap != l->cap || h.slot_bytes != l->slot_bytes)
		return -EINVAL;
	*cell = h.cell_size;
	*count = h.count;
	return 0;
}

int unimem_grid_attach_as(unimem_grid **out, unimem_block *b, size_t cell_size, size_t cells)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!b)
		return -EINVAL;
	uint64_t cell, count;
	struct umi_grid_layout l;
	int err = check_header(b, &cell, &count, &l);
	if (err)
		return err;
	if ((cell_size || cells) && (cell != cell_size || count != cells))
		return -EINVAL;
	unimem_grid *g = aligned_alloc(UNIMEM_CACHE_LINE, sizeof *g);
	if (!g)
		return -ENOMEM;
	err = bind(g, b, cell, count, &l, 0);
	if (err) {
		free(g);
		return err;
	}
	*out = g;
	return 0;
}

int unimem_grid_attach(unimem_grid **out, unimem_block *b)
{
	return unimem_grid_attach_as(out, b, 0, 0);
}

void umi_grid_fini(unimem_grid *g)
{
	if (!g->block)
		return;
	umi_grid_registry_lock();
	for (unimem_grid **p = &registry; *p; p = &(*p)->next)
		if (*p == g) {
			*p = g->next;
			break;
		}
	umi_grid_registry_unlock();
	if (g->pid == umi_grid_getpid() && g->rec < UNIMEM_GRID_PVT_RECS) {
		const uint32_t left = umi_grid_release_slots(g, 0);
		umi_grid_return_held(g, g->rec);
		if (left) {
			/* A slot kept by a thief that would not let go still names this record:
			 * mark it closed, and a reclaim frees both once that thief is gone. */
			__atomic_store_n(&g->recs[g->rec].closed, 1u, __ATOMIC_RELEASE);
		} else {
			/* Free the record unless a reclaim elsewhere already did. */
			uint64_t ident = __atomic_load_n(&g->recs[g->rec].ident, __ATOMIC_RELAXED);
			if (ident)
				__atomic_compare_exchange_n(&g->recs[g->rec].ident, &ident, 0, false,
							    __ATOMIC_RELEASE, __ATOMIC_RELAXED);
		}
	}
	if (g->flags & UMI_GRID_OWNS_BLOCK)
		unimem_block_close(g->block);
	g->block = NULL;
}

void unimem_grid_close(unimem_grid *g)
{
	if (!g)
		return;
	umi_grid_fini(g);
	free(g);
}

size_t unimem_grid_available(const unimem_grid *g)
{
	if (!g)
		return 0;
	size_t n = 0;
	for (uint64_t w = 0; w < g->words; w++)
		n += (size_t)__builtin_popcountll(__atomic_load_n(&g->bits[w], __ATOMIC_RELAXED));
	for (uint32_t t = 0; t < UNIMEM_GRID_PVT_SLOTS; t++) {
		const unimem_grid_pvt_slot *s = unimem_grid_pvt_slot_at(g, t);
		if (!__atomic_load_n(&s->owner, __ATOMIC_RELAXED))
			continue;
		uint32_t k = __atomic_load_n(&s->n, __ATOMIC_RELAXED);
		n += k <= umi_grid_slot_room(g) ? k : 0;
	}
	return n;
}

const unimem_block *unimem_grid_block(const unimem_grid *g)
{
	return g ? g->block : NULL;
}
