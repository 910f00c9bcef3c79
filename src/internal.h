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

/* Initialise a Grid of `cells` cells of `cell_size` bytes (rounded up to 64) over a new
 * Block opened with `flags`; the generated pools call it with their constants.
 * Returns 0 or a negative errno (the Grid is then left without a Block). */
int umi_grid_init(unimem_grid *g, size_t cell_size, size_t cells, unsigned flags);

/* Close the Block of a Grid set up by umi_grid_init(). */
void umi_grid_fini(unimem_grid *g);

/* Drop the GPU mapping of a Block that is being closed (no-op when not mapped). */
void umi_gpu_release(unimem_block *b);

/* Revoke a network export of a Block that is being closed (src/net_ucx.c; no-op when
 * nothing is exported). */
void umi_net_release(unimem_block *b);

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

/* Take room for len bytes at 4096 alignment from t (NULL when it does not fit), and
 * give [room, room + len) back while nothing was taken after it. */
void *umi_tape_take_room(unimem_tape *t, size_t len);
void umi_tape_give_back(unimem_tape *t, void *room, size_t len);

/* Remember the RLIMIT_MEMLOCK that refused a pin, for unimem_strerror(). */
void umi_note_memlock_refusal(size_t asked);

#endif
