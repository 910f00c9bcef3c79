/* SPDX-License-Identifier: MIT */
/* Block, Linux backend: memfd + seals + MAP_SHARED, populated in parallel and locked. */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MFD_HUGETLB
#define MFD_HUGETLB 0x0004U
#endif
#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 0x01
#endif

#define KNOWN_FLAGS (UNIMEM_BLOCK_UNPINNED | UNIMEM_BLOCK_HUGE)

/* Populating is most of a pinned open's cost (a fault costs 1-2 us in VMs), and one
 * thread cannot fault memfd pages as fast as the kernel can hand them out: split the
 * range over several threads from this size on. */
#define PARALLEL_POPULATE_MIN (8u << 20)
#define POPULATE_CHUNK_MIN (4u << 20)
#define POPULATE_THREADS_MAX 8

size_t umi_page_size(void)
{
	static size_t page;
	size_t p = __atomic_load_n(&page, __ATOMIC_RELAXED);
	if (!p) {
		long v = sysconf(_SC_PAGESIZE);
		p = v > 0 ? (size_t)v : 4096;
		__atomic_store_n(&page, p, __ATOMIC_RELAXED);
	}
	return p;
}

/* Touch every page for writing: the fallback where MADV_POPULATE_WRITE is missing. */
static int touch_pages(unsigned char *p, size_t len, size_t page)
{
	for (size_t off = 0; off < len; off += page)
		__atomic_fetch_or((unsigned char *)p + off, 0, __ATOMIC_RELAXED);
	return 0;
}

static int populate_range(unsigned char *p, size_t len, size_t page)
{
	if (madvise(p, len, MADV_POPULATE_WRITE) == 0)
		return 0;
	if (errno == EINVAL) /* kernel older than 5.14 */
		return touch_pages(p, len, page);
	/* ENOMEM: out of memory; EFAULT: the fault failed (SIGBUS territory). */
	return errno == EFAULT || errno == ENOMEM || errno == EAGAIN ? -ENOMEM : -errno;
}

struct populate_job {
	unsigned char *p;
	size_t len;
	size_t page;
	int err;
};

static void *populate_thread(void *arg)
{
	struct populate_job *j = arg;
	j->err = populate_range(j->p, j->len, j->page);
	return NULL;
}

static int populate(unsigned char *p, size_t len, size_t page)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	size_t n = len / POPULATE_CHUNK_MIN;
	if (len < PARALLEL_POPULATE_MIN || cpus < 2 || n < 2)
		return populate_range(p, len, page);
	if (n > (size_t)cpus)
		n = (size_t)cpus;
	if (n > POPULATE_THREADS_MAX)
		n = POPULATE_THREADS_MAX;

	struct populate_job jobs[POPULATE_THREADS_MAX];
	pthread_t tids[POPULATE_THREADS_MAX];
	size_t per = umi_round_up(len / n, page), off = 0, started = 0;
	for (size_t i = 0;; i++) {
		bool last = i == n - 1 || len - off <= per;
		jobs[i] = (struct populate_job){ p + off, last ? len - off : per, page, 0 };
		/* This thread takes the last share itself; a thread that cannot start
		 * leaves the rest to this one too. */
		if (last || pthread_create(&tids[i], NULL, populate_thread, &jobs[i]) != 0) {
			jobs[i].len = len - off;
			populate_thread(&jobs[i]);
			break;
		}
		started++;
		off += per;
	}
	int err = jobs[started].err;
	for (size_t i = 0; i < started; i++) {
		pthread_join(tids[i], NULL);
		if (jobs[i].err && !err)
			err = jobs[i].err;
	}
	return err;
}

/* Bytes of memory the system could hand out now (MemAvailable), or SIZE_MAX if unknown. */
static size_t mem_available(void)
{
	FILE *f = fopen("/proc/meminfo", "re");
	if (!f)
		return SIZE_MAX;
	char line[128];
	size_t kib = SIZE_MAX;
	while (fgets(line, sizeof line, f)) {
		unsigned long long v;
		if (sscanf(line, "MemAvailable: %llu kB", &v) == 1) {
			kib = (size_t)v;
			break;
		}
	}
	fclose(f);
	return kib == SIZE_MAX || kib > SIZE_MAX / 1024 ? SIZE_MAX : kib * 1024;
}

/* Whether the machine could ever back `size` bytes (pinned: in RAM now). Cheap for
 * sizes far below the RAM size: /proc is read only for large ones. */
static bool can_back(size_t size, bool pinned)
{
	struct sysinfo si;
	if (sysinfo(&si) != 0)
		return true;
	unsigned long long unit = si.mem_unit ? si.mem_unit : 1;
	unsigned long long ram = (unsigned long long)si.totalram * unit;
	unsigned long long swap = (unsigned long long)si.totalswap * unit;
	if (!pinned)
		return size <= ram + swap;
	if (size > ram)
		return false;
	if (size < ram / 4)
		return true;
	return size <= mem_available();
}

/* Create the memfd (named `name`, which carries the Block's id: see share_linux.c) and
 * its mapping. Tries huge pages first when asked; falls back to normal pages silently.
 * On success fills b->fd, b->ptr, b->size, b->page. */
static int map_memfd(unimem_block *b, size_t bytes, unsigned flags, const char *name)
{
	size_t page = umi_page_size();
	if (flags & UNIMEM_BLOCK_HUGE) {
		int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB);
		struct stat st;
		if (fd >= 0 && fstat(fd, &st) == 0 && st.st_blksize > (blksize_t)page) {
			size_t hpage = (size_t)st.st_blksize;
			size_t size = umi_round_up(bytes, hpage);
			void *p = MAP_FAILED;
			/* mmap reserves the huge pages: it fails when the pool is short. */
			if (size && ftruncate(fd, (off_t)size) == 0)
				p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
			if (p != MAP_FAILED) {
				b->fd = fd;
				b->ptr = p;
				b->size = size;
				b->page = hpage;
				return 0;
			}
		}
		if (fd >= 0)
			close(fd);
	}

	size_t size = umi_round_up(bytes, page);
	if (!size)
		return -EINVAL;
	if (size > (size_t)INT64_MAX || !can_back(size, !(flags & UNIMEM_BLOCK_UNPINNED)))
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
	if (flags & UNIMEM_BLOCK_HUGE)
		madvise(p, size, MADV_HUGEPAGE); /* a hint for shmem THP; ignored where off */
	b->fd = fd;
	b->ptr = p;
	b->size = size;
	b->page = page;
	return 0;
}

/* Lock the mapping and fault every page in. */
static int pin(unimem_block *b)
{
	/* Lock-on-fault first: it checks RLIMIT_MEMLOCK at once, before any page is
	 * faulted, and the parallel populate that follows locks each page it faults. */
	if (mlock2(b->ptr, b->size, MLOCK_ONFAULT) != 0) {
		if (errno == ENOMEM || errno == EPERM || errno == EAGAIN) {
			umi_note_memlock_refusal(b->size);
			return -EPERM;
		}
		if (errno != EINVAL && errno != ENOSYS)
			return -errno;
		/* No lock-on-fault (kernel < 4.4): populate, then lock. */
		int err = populate(b->ptr, b->size, b->page);
		if (err)
			return err;
		if (mlock(b->ptr, b->size) != 0) {
			if (errno == ENOMEM || errno == EPERM || errno == EAGAIN) {
				umi_note_memlock_refusal(b->size);
				return -EPERM;
			}
			return -errno;
		}
		return 0;
	}
	return populate(b->ptr, b->size, b->page);
}

int unimem_block_open(unimem_block **out, size_t bytes, unsigned flags)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (bytes == 0 || (flags & ~(unsigned)KNOWN_FLAGS) || !umi_round_up(bytes, umi_page_size()))
		return -EINVAL;

	unimem_block *b = calloc(1, sizeof *b);
	if (!b)
		return -ENOMEM;
	b->fd = -1;
	char name[UMI_SHARE_NAME_MAX];
	umi_share_claim(b, name);
	int err = map_memfd(b, bytes, flags, name);
	if (err) {
		umi_share_release(b);
		free(b);
		return err;
	}
	/* Seal the size: no holder of the fd can shrink (SIGBUS for the others) or grow it. */
	if (fcntl(b->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
		err = -errno;
		goto fail;
	}
	if (!(flags & UNIMEM_BLOCK_UNPINNED)) {
		err = pin(b);
		if (err)
			goto fail;
		b->pinned = true;
	}
	*out = b;
	return 0;
fail:
	munmap(b->ptr, b->size); /* also drops any lock and any page faulted so far */
	close(b->fd);
	umi_share_release(b);
	free(b);
	return err;
}

int umi_block_pin(unimem_block *b)
{
	return pin(b);
}

void unimem_block_close(unimem_block *b)
{
	if (!b)
		return;
	umi_gpu_release(b);
	munmap(b->ptr, b->size);
	close(b->fd);
	/* The id goes back only once the fd (which carries the name) is closed, so no
	 * two memfds of this process ever carry the same name. */
	umi_share_release(b);
	free(b);
}

void *unimem_block_ptr(const unimem_block *b)
{
	return b ? b->ptr : NULL;
}

size_t unimem_block_size(const unimem_block *b)
{
	return b ? b->size : 0;
}

size_t unimem_block_page_size(const unimem_block *b)
{
	return b ? b->page : 0;
}

bool unimem_block_pinned(const unimem_block *b)
{
	return b && b->pinned;
}

int unimem_block_fd(const unimem_block *b)
{
	return b ? b->fd : -1;
}

void *unimem_block_handle(const unimem_block *b)
{
	(void)b;
	return NULL;
}

/* unimem_block_id, _lookup, _send and _recv live in share_linux.c. */
