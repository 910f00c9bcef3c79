/* SPDX-License-Identifier: MIT */
/* The Block as the other files of src/ see it: the struct behind unimem_block and its
 * holder count. The platform under it is src/os/os.h. Never installed. */
#ifndef UNIMEM_BLOCK_PVT_H
#define UNIMEM_BLOCK_PVT_H

#include "base.h"

#include <stdatomic.h>

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

/* The checks of unimem_block_open() that make its input bad (-EINVAL: a zero size,
 * an unknown flag, a size whose rounding to the page overflows), for the opens over it
 * (the Tape, the Layout) that refuse more before a Block is made. 0 when none applies. */
int umi_block_check_open(size_t bytes, unsigned flags);

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

#endif
