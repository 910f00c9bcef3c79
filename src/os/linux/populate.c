/* SPDX-License-Identifier: MIT */
/* Linux: pinning a mapped Block. Lock-on-fault, then every page filled and faulted in from
 * both ends at once over the parallel helper. */
#define _GNU_SOURCE
#include "linux.h"

#include <errno.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 0x01
#endif

/* Populating is most of a pinned open's cost (a fault costs 1-2 us in VMs). Measured on a
 * 2-core VM (docs/BENCHMARKS.md): writing zeros into the memfd with pwritev() fills the page
 * cache at ~1.5 us a page, no fault taken, and a read-populate then maps those pages 16 at a
 * time (fault-around) at ~0.5 us a page; a write fault per page (MADV_POPULATE_WRITE) costs
 * ~2.4 us. Writes to one file serialise on its inode lock but faults do not, so the work is
 * split in chunks claimed from both ends: the opening thread writes chunks from the front,
 * helper threads fault chunks in from the back, until they meet. When the helpers get no
 * CPU, the opening thread simply does more chunks itself: nobody waits for a fixed share. */
#define FILL_CHUNK ((size_t)512 << 10)
/* Huge pages are faulted in chunks of whole pages, several per chunk: 512 KiB chunks would
 * put up to four threads on one 2 MiB page (16 GiB pinned on the H200 host: 1.3-1.6 s with
 * shmem THP, 3.4-3.6 s with hugetlb, against 0.7 s for the same faults in 64 MiB pieces). */
#define HUGE_CHUNK ((size_t)8 << 20)
#define FILL_PARALLEL_MIN ((size_t)2 << 20)
#define FILL_HELPERS_MAX 7
#define ZERO_SOURCE ((size_t)64 << 10)

/* Read-only source of zeros for pwritev (bss: every page of it is the zero page). */
static unsigned char zero_source[ZERO_SOURCE];

/* Fault every page in: for writing (allocates shmem pages), or for reading (maps pages that
 * are already in the page cache, several per fault). Faults in a VM_LOCKED mapping lock. */
static int populate_range(unsigned char *p, size_t len, size_t page, bool write)
{
	if (madvise(p, len, write ? MADV_POPULATE_WRITE : MADV_POPULATE_READ) == 0)
		return 0;
	if (errno == EINVAL) { /* kernel older than 5.14: touch the pages */
		for (size_t off = 0; off < len; off += page) {
			if (write)
				__atomic_fetch_or(p + off, 0, __ATOMIC_RELAXED);
			else
				(void)*(volatile unsigned char *)(p + off);
		}
		return 0;
	}
	/* ENOMEM: out of memory; EFAULT: the fault failed (SIGBUS territory). */
	return errno == EFAULT || errno == ENOMEM || errno == EAGAIN ? -ENOMEM : -errno;
}

/* Fill [off, off + len) of the memfd with zeros through the page cache: no fault taken.
 * Returns 0, -ENOMEM, or -EOPNOTSUPP where the file cannot be written (hugetlbfs). */
static int write_zeros(int fd, size_t off, size_t len)
{
	struct iovec iov[FILL_CHUNK / ZERO_SOURCE];
	while (len) {
		int n = 0;
		for (size_t left = len; left && n < (int)(sizeof iov / sizeof iov[0]); n++) {
			size_t l = left < ZERO_SOURCE ? left : ZERO_SOURCE;
			iov[n] = (struct iovec){ zero_source, l };
			left -= l;
		}
		ssize_t w = pwritev(fd, iov, n, (off_t)off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EINVAL || errno == EOPNOTSUPP || errno == ENODEV)
				return -EOPNOTSUPP;
			return -ENOMEM; /* ENOSPC, ENOMEM, EFBIG: no memory for the pages */
		}
		if (w == 0)
			return -ENOMEM;
		off += (size_t)w;
		len -= (size_t)w;
	}
	return 0;
}

struct fill {
	unsigned char *p;
	size_t size, page, chunk, nchunks;
	int fd;
	bool fresh;    /* a new, empty memfd: zeros may be written; else fault only */
	/* The opening thread's (worker 0's) own, read by it alone until the join. */
	bool writable; /* zeros may still be written (not huge pages, not refused) */
	size_t front;  /* chunks it took from the front */
	size_t written; /* it wrote chunks [0, written) */
	size_t back;   /* chunks the helpers took from the end (atomic) */
};

static size_t chunk_len(const struct fill *f, size_t c)
{
	size_t off = c * f->chunk;
	return f->size - off < f->chunk ? f->size - off : f->chunk;
}

/* One chunk, claimed by worker `worker`: the opening thread writes chunks from the front
 * (huge pages cannot be written: it faults them), helpers fault chunks in from the back.
 * A Block that is not fresh is faulted in from both ends, never written. */
static int fill_chunk(void *arg, size_t piece, unsigned worker)
{
	(void)piece; /* the claim's number: which end the chunk comes from is the worker's */
	struct fill *f = arg;
	if (worker) {
		size_t c = f->nchunks - 1 - __atomic_fetch_add(&f->back, 1, __ATOMIC_RELAXED);
		return populate_range(f->p + c * f->chunk, chunk_len(f, c), f->page, f->fresh);
	}
	size_t c = f->front++, len = chunk_len(f, c);
	int err = f->writable ? write_zeros(f->fd, c * f->chunk, len) : -EOPNOTSUPP;
	if (err == -EOPNOTSUPP) {
		f->writable = false;
		err = populate_range(f->p + c * f->chunk, len, f->page, f->fresh);
	} else if (!err) {
		f->written = f->front;
	}
	return err;
}

/* Make every page of the mapping resident (and, in a VM_LOCKED mapping, locked). `fresh`:
 * the memfd was just created by this open and holds no page, so zeros may be written into
 * it; otherwise (a Block looked up or received) its pages hold data and are only faulted
 * in (a read fault maps the pages that are there, and allocates zeroed ones for holes). */
static int populate(unsigned char *p, size_t size, size_t page, int fd, bool fresh,
		    bool fault_only)
{
	const bool small = !fault_only && page == umi_os_page_size();
	const size_t chunk = small ? FILL_CHUNK : page > HUGE_CHUNK ? page : HUGE_CHUNK;
	struct fill f = { .p = p, .size = size, .page = page, .chunk = chunk,
			  .nchunks = (size + chunk - 1) / chunk, .fd = fd, .fresh = fresh,
			  .writable = fresh && small };
	size_t helpers = 0;
	if (size >= FILL_PARALLEL_MIN) {
		helpers = f.nchunks / 2;
		if (helpers > FILL_HELPERS_MAX)
			helpers = FILL_HELPERS_MAX;
	}
	int err = umi_parallel(f.nchunks, fill_chunk, &f, (unsigned)helpers);
	/* Map what the opening thread wrote: read faults, 16 pages at a time. */
	if (!err && f.written)
		err = populate_range(p, f.written * chunk < size ? f.written * chunk : size,
				     page, false);
	return err;
}

/* -EPERM for a pin of `asked` bytes that RLIMIT_MEMLOCK refused, with the limit said. */
static int memlock_refused(size_t asked)
{
	struct rlimit rl;
	char cur[48] = "unknown";
	if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0) {
		if (rl.rlim_cur == RLIM_INFINITY)
			snprintf(cur, sizeof cur, "unlimited");
		else
			snprintf(cur, sizeof cur, "%llu bytes", (unsigned long long)rl.rlim_cur);
	}
	return umi_fail(-EPERM,
			"the locked-memory limit RLIMIT_MEMLOCK (%s) is too small to pin %zu bytes; "
			"raise it (ulimit -l, limits.conf, systemd LimitMEMLOCK=) or open the Block "
			"with UNIMEM_BLOCK_UNPINNED",
			cur, asked);
}

/* Fault every page in, then lock the mapping. */
static int populate_then_lock(unimem_block *b, bool fresh, bool fault_only)
{
	int err = populate(b->ptr, b->size, b->page, b->fd, fresh, fault_only);
	if (err)
		return err;
	if (mlock(b->ptr, b->size) != 0) {
		if (errno == ENOMEM || errno == EPERM || errno == EAGAIN)
			return memlock_refused(b->size);
		return -errno;
	}
	return 0;
}

int umi_linux_pin(unimem_block *b, bool fresh, bool fault_only)
{
	/* hugetlb pages (a page larger than the system's): lock-on-fault is not honoured for
	 * them, mlock2 faults the whole mapping in itself, on one thread (16 GiB on the H200
	 * host: 6.2 s, against 0.49 s for the parallel populate then an mlock of 2 ms; 2 GiB
	 * on the 2-core VM: 0.24-0.56 s against 0.13-0.15 s; docs/BENCHMARKS_GPU.md). So
	 * populate first, then lock (which checks RLIMIT_MEMLOCK: a refusal leaves pages that
	 * the caller's munmap frees). */
	if (b->page != umi_os_page_size())
		return populate_then_lock(b, fresh, fault_only);
	/* Lock-on-fault first: it checks RLIMIT_MEMLOCK at once, before any page is
	 * faulted, and the parallel populate that follows locks each page it faults. */
	if (mlock2(b->ptr, b->size, MLOCK_ONFAULT) != 0) {
		if (errno == ENOMEM || errno == EPERM || errno == EAGAIN)
			return memlock_refused(b->size);
		if (errno != EINVAL && errno != ENOSYS)
			return -errno;
		/* No lock-on-fault (kernel < 4.4): populate, then lock. */
		return populate_then_lock(b, fresh, fault_only);
	}
	return populate(b->ptr, b->size, b->page, b->fd, fresh, fault_only);
}
