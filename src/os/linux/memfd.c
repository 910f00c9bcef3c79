/* SPDX-License-Identifier: MIT */
/* Linux: a Block is a memfd, sealed against shrink and grow, mapped MAP_SHARED. Its name
 * carries the Block's id (share.c); pinning is populate.c's. A private Block
 * (UNIMEM_BLOCK_PRIVATE) is anonymous memory instead: no fd, no id. */
#define _GNU_SOURCE
#include "linux.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MFD_HUGETLB
#define MFD_HUGETLB 0x0004U
#endif
#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

/* Create the memfd (named `name`, which carries the Block's id: see share.c) and its
 * mapping of `size` bytes (a multiple of the page). Tries huge pages first when asked,
 * rounding up to the huge page; falls back to normal pages silently. On success fills
 * b->fd, b->ptr, b->size, b->page. */
static int map_memfd(unimem_block *b, size_t size, unsigned flags, bool pin, const char *name)
{
	size_t page = umi_os_page_size();
	if (flags & UNIMEM_BLOCK_HUGE) {
		int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB);
		struct stat st;
		if (fd >= 0 && fstat(fd, &st) == 0 && st.st_blksize > (blksize_t)page) {
			size_t hpage = (size_t)st.st_blksize;
			size_t hsize = umi_round_up(size, hpage);
			void *p = MAP_FAILED;
			/* mmap reserves the huge pages: it fails when the pool is short. */
			if (hsize && ftruncate(fd, (off_t)hsize) == 0)
				p = mmap(NULL, hsize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
			if (p != MAP_FAILED) {
				b->fd = fd;
				b->ptr = p;
				b->size = hsize;
				b->page = hpage;
				return 0;
			}
		}
		if (fd >= 0)
			close(fd);
	}

	if (!umi_linux_can_back(size, pin))
		return -ENOMEM;
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return errno == EMFILE || errno == ENFILE ? -EMFILE : -errno;
	if (ftruncate(fd, (off_t)size) != 0) {
		int err = errno == EFBIG || errno == EINVAL ? -ENOMEM : -errno;
		close(fd);
		return err;
	}
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		int err = -errno;
		close(fd);
		return err == -EINVAL ? -ENOMEM : err;
	}
	/* A hint for shmem THP: where the machine's policy allows it (advise, always), the
	 * faults that populate the Block get 2 MiB pages. 1 GiB in 4-16 threads on the 2-core VM:
	 * 4 KiB pages 2.0-2.8 GB/s, huge ones 14-27 GB/s (docs/BENCHMARKS.md). */
	if (flags & UNIMEM_BLOCK_HUGE)
		madvise(p, size, MADV_HUGEPAGE);
	b->fd = fd;
	b->ptr = p;
	b->size = size;
	b->page = page;
	return 0;
}

/* The huge page size of anonymous THP: where a huge page may start. */
#define THP_ALIGN ((size_t)2 << 20)

/* A private Block: anonymous memory, not inherited by a fork's child. With HUGE, placed
 * on a 2 MiB boundary (so that every whole 2 MiB of it can be one page) and marked
 * MADV_HUGEPAGE: anonymous THP is allowed where shmem THP is not on most machines
 * (Debian 12, Ubuntu: `madvise` against `never`). 16 GiB on the GPU machine's host: see
 * docs/BENCHMARKS_GPU.md. */
static int create_private(unimem_block *b, size_t size, unsigned flags, bool pin)
{
	if (!umi_linux_can_back(size, pin))
		return -ENOMEM;
	const bool huge = (flags & UNIMEM_BLOCK_HUGE) && size >= THP_ALIGN;
	const size_t slack = huge ? THP_ALIGN : 0; /* size <= INT64_MAX: no overflow */
	unsigned char *m = mmap(NULL, size + slack, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return -ENOMEM; /* EINVAL for a length the address space cannot take, or ENOMEM */
	unsigned char *p = m;
	if (huge) {
		p = (unsigned char *)(((uintptr_t)m + THP_ALIGN - 1) & ~(uintptr_t)(THP_ALIGN - 1));
		if (p > m)
			munmap(m, (size_t)(p - m));
		munmap(p + size, (size_t)(m + slack - p)); /* the tail: p - m < slack */
	}
	/* A child of fork() must not share these pages copy-on-write: a write by the parent
	 * would move it to a new page while a device reads the old one. */
	if (madvise(p, size, MADV_DONTFORK) != 0) {
		int err = -errno;
		munmap(p, size);
		return err;
	}
	if (huge)
		madvise(p, size, MADV_HUGEPAGE); /* a hint: refused where THP is off */
	b->ptr = p;
	b->size = size;
	b->page = umi_os_page_size();
	b->writable = true;
	if (pin) {
		/* No file to write zeros into: every page is faulted in (huge ones where THP
		 * gives them). */
		int err = umi_linux_pin(b, true, true);
		if (err) {
			munmap(p, size); /* also drops any lock and every page faulted so far */
			return err;
		}
	}
	return 0;
}

int umi_os_create(unimem_block *b, size_t size, unsigned flags, bool pin)
{
	if (flags & UNIMEM_BLOCK_PRIVATE)
		return create_private(b, size, flags, pin);
	char name[UMI_SHARE_NAME_MAX];
	umi_share_claim(b, name);
	int err = map_memfd(b, size, flags, pin, name);
	if (err) {
		umi_share_release(b);
		return err;
	}
	/* Seal the size: no holder of the fd can shrink (SIGBUS for the others) or grow it.
	 * F_SEAL_SEAL is left for unimem_block_seal(), which adds F_SEAL_FUTURE_WRITE first. */
	if (fcntl(b->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) {
		err = -errno;
		goto fail;
	}
	b->writable = true;
	umi_share_mark(b);
	if (pin) {
		/* Huge pages come from faults, not from writes into the file (hugetlb pages
		 * are never written: populate.c faults them anyway). */
		err = umi_linux_pin(b, true, (flags & UNIMEM_BLOCK_HUGE) && umi_linux_shmem_thp());
		if (err)
			goto fail;
	}
	return 0;
fail:
	munmap(b->ptr, b->size); /* also drops any lock and any page faulted so far */
	umi_share_unmark(b);
	close(b->fd);
	umi_share_release(b);
	return err;
}

void umi_os_destroy(unimem_block *b)
{
	munmap(b->ptr, b->size);
	if (b->fd < 0)
		return; /* private: no fd, no id */
	umi_share_unmark(b); /* a dup of the fd that outlives it must not resolve */
	close(b->fd);
	/* The id goes back only once the fd (which carries the name) is closed, so no
	 * two memfds of this process ever carry the same name. */
	umi_share_release(b);
}

int umi_os_seal(unimem_block *b)
{
	if (b->fd < 0)
		return -EINVAL;
	int seals = fcntl(b->fd, F_GET_SEALS);
	if (seals < 0)
		return -errno;
	if (seals & F_SEAL_FUTURE_WRITE)
		return 0; /* sealed already (by this holder or another) */
	if (fcntl(b->fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE | F_SEAL_SEAL) != 0)
		return errno == EPERM ? -EBUSY : -errno; /* a holder added F_SEAL_SEAL */
	return 0;
}
