/* SPDX-License-Identifier: MIT */
/* Block, Linux backend: memfd + seals + MAP_SHARED, filled and faulted in from both ends
 * at once, and locked. */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/uio.h>
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

/* Populating is most of a pinned open's cost (a fault costs 1-2 us in VMs). Measured on a
 * 2-core VM (docs/BENCHMARKS.md): writing zeros into the memfd with pwritev() fills the page
 * cache at ~1.5 us a page, no fault taken, and a read-populate then maps those pages 16 at a
 * time (fault-around) at ~0.5 us a page; a write fault per page (MADV_POPULATE_WRITE) costs
 * ~2.4 us. Writes to one file serialise on its inode lock but faults do not, so the work is
 * split in chunks claimed from both ends: the opening thread writes chunks from the front,
 * helper threads fault chunks in from the back, until they meet. When the helpers get no
 * CPU, the opening thread simply does more chunks itself: nobody waits for a fixed share. */
#define FILL_CHUNK ((size_t)512 << 10)
#define FILL_PARALLEL_MIN ((size_t)2 << 20)
#define FILL_HELPERS_MAX 7
#define ZERO_SOURCE ((size_t)64 << 10)

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

/* Read-only source of zeros for pwritev (bss: every page of it is the zero page). */
static unsigned char zero_source[ZERO_SOURCE];

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
	size_t size, page, nchunks;
	int fd;
	bool fresh;       /* a new, empty memfd: zeros may be written; else fault only */
	size_t claimed;   /* chunks claimed from either end (atomic) */
	size_t back;      /* chunks the helpers claimed, from the end (atomic) */
	int err;          /* first error (atomic) */
};

static size_t chunk_len(const struct fill *f, size_t c)
{
	size_t off = c * FILL_CHUNK;
	return f->size - off < FILL_CHUNK ? f->size - off : FILL_CHUNK;
}

static bool fill_claim(struct fill *f)
{
	if (__atomic_load_n(&f->err, __ATOMIC_RELAXED))
		return false;
	return __atomic_fetch_add(&f->claimed, 1, __ATOMIC_RELAXED) < f->nchunks;
}

static void fill_fail(struct fill *f, int err)
{
	int none = 0;
	__atomic_compare_exchange_n(&f->err, &none, err, false, __ATOMIC_RELAXED,
				    __ATOMIC_RELAXED);
}

/* A helper: fault chunks in from the back. */
static void *fill_back(void *arg)
{
	struct fill *f = arg;
	while (fill_claim(f)) {
		size_t c = f->nchunks - 1 - __atomic_fetch_add(&f->back, 1, __ATOMIC_RELAXED);
		int err = populate_range(f->p + c * FILL_CHUNK, chunk_len(f, c), f->page, f->fresh);
		if (err) {
			fill_fail(f, err);
			break;
		}
	}
	return NULL;
}

/* Helper threads worth starting now: CPUs this thread may run on that no runnable task
 * holds at this instant (the 4th field of /proc/loadavg counts the runnable tasks, this
 * one included). A helper that gets no CPU only makes the opening thread wait for it. */
long umi_idle_cpus(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) < cpus)
		cpus = CPU_COUNT(&set);
	if (cpus < 2)
		return 0;
	char buf[128];
	int fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return cpus - 1; /* no /proc: assume the others are free */
	buf[n] = 0;
	const char *q = buf;
	for (int i = 0; i < 3 && q; i++) {
		q = strchr(q, ' ');
		if (q)
			q++;
	}
	long running = q ? strtol(q, NULL, 10) : 1;
	if (running < 1)
		running = 1;
	return running >= cpus ? 0 : cpus - running;
}

/* Make every page of the mapping resident (and, in a VM_LOCKED mapping, locked). `fresh`:
 * the memfd was just created by this open and holds no page, so zeros may be written into
 * it; otherwise (a Block looked up or received) its pages hold data and are only faulted
 * in (a read fault maps the pages that are there, and allocates zeroed ones for holes). */
static int populate(unsigned char *p, size_t size, size_t page, int fd, bool fresh)
{
	struct fill f = { p, size, page, (size + FILL_CHUNK - 1) / FILL_CHUNK, fd, fresh,
			  0, 0, 0 };
	pthread_t tids[FILL_HELPERS_MAX];
	size_t helpers = 0;
	long idle = size >= FILL_PARALLEL_MIN ? umi_idle_cpus() : 0;
	if (idle > 0) {
		size_t want = (size_t)idle;
		if (want > FILL_HELPERS_MAX)
			want = FILL_HELPERS_MAX;
		if (want > f.nchunks / 2)
			want = f.nchunks / 2;
		/* A helper that cannot start leaves its chunks to this thread. */
		while (helpers < want && pthread_create(&tids[helpers], NULL, fill_back, &f) == 0)
			helpers++;
	}
	/* This thread: write chunks from the front; huge pages cannot be written, fault them.
	 * A Block that is not fresh is faulted in from both ends, never written. */
	bool writable = fresh && page == umi_page_size();
	size_t front = 0, written = 0;
	while (fill_claim(&f)) {
		size_t c = front++, len = chunk_len(&f, c);
		int err = writable ? write_zeros(fd, c * FILL_CHUNK, len) : -EOPNOTSUPP;
		if (err == -EOPNOTSUPP) {
			writable = false;
			err = populate_range(p + c * FILL_CHUNK, len, page, fresh);
		} else if (!err) {
			written = front;
		}
		if (err) {
			fill_fail(&f, err);
			break;
		}
	}
	/* Map what this thread wrote: read faults, 16 pages at a time. */
	int err = 0;
	if (written && !__atomic_load_n(&f.err, __ATOMIC_RELAXED))
		err = populate_range(p, written * FILL_CHUNK < size ? written * FILL_CHUNK : size, page,
				     false);
	for (size_t i = 0; i < helpers; i++)
		pthread_join(tids[i], NULL);
	return f.err ? f.err : err;
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

/* Lock the mapping and fault every page in; `fresh` as populate(). */
static int pin(unimem_block *b, bool fresh)
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
		int err = populate(b->ptr, b->size, b->page, b->fd, fresh);
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
	return populate(b->ptr, b->size, b->page, b->fd, fresh);
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
		err = pin(b, true);
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
	return pin(b, false); /* another holder's pages: fault them in, never write */
}

void unimem_block_close(unimem_block *b)
{
	/* DLPack exports hold the Block too (view.c): the last holder tears it down. */
	if (!b || !umi_block_unref(b))
		return;
	umi_net_release(b); /* before the pages go: importers then get errors */
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
