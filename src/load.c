/* SPDX-License-Identifier: MIT */
/* Files read straight into a Tape: page-cached pieces with pread, the others with
 * O_DIRECT into the Tape's own pages; no bounce buffer anywhere. */
#define _GNU_SOURCE
#include "load_pvt.h"
#include "os/os.h"
#include "tape_pvt.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* O_DIRECT wants the file offset, the length and the memory address aligned to the
 * device's logical block (512 or 4096 bytes): 4096 satisfies both. */
#define DIO_ALIGN ((uint64_t)4096)

/* Bytes decided (cached or not) and read at a time: 16 MiB keeps many requests in flight
 * for an O_DIRECT read and costs a 4 KiB mincore vector. */
#define PIECE ((size_t)16 << 20)

#define KNOWN_FLAGS (UNIMEM_READ_BUFFERED | UNIMEM_READ_DIRECT)

/* Read exactly len bytes at off, retrying short reads and EINTR; -EIO at an early end
 * of file. */
static int pread_full(int fd, unsigned char *dst, size_t len, uint64_t off)
{
	while (len) {
		size_t n = len > (size_t)INT_MAX ? (size_t)1 << 30 : len;
		ssize_t got = pread(fd, dst, n, (off_t)off);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (got == 0)
			return -EIO;
		dst += got;
		off += (uint64_t)got;
		len -= (size_t)got;
	}
	return 0;
}

/* pread on the O_DIRECT descriptor; -EOPNOTSUPP when the file system turns it down
 * (EINVAL: it takes O_DIRECT at open but not this read). */
static int pread_direct(int dfd, unsigned char *dst, size_t len, uint64_t off)
{
	int err = pread_full(dfd, dst, len, off);
	return err == -EINVAL ? -EOPNOTSUPP : err;
}

/* A second open of fd's file with O_DIRECT; -EMFILE, -ENFILE or -ENOMEM when the process
 * or the system is out of descriptors, -EOPNOTSUPP where O_DIRECT is refused. */
static int open_direct(int fd)
{
#ifdef O_DIRECT
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	int dfd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC | O_NONBLOCK);
	if (dfd < 0)
		return errno == EMFILE || errno == ENFILE || errno == ENOMEM ? -errno : -EOPNOTSUPP;
	struct stat a, b;
	/* The same file (not something else at a reused path). */
	if (fstat(fd, &a) != 0 || fstat(dfd, &b) != 0 || a.st_dev != b.st_dev ||
	    a.st_ino != b.st_ino) {
		close(dfd);
		return -EOPNOTSUPP;
	}
	return dfd;
#else
	(void)fd;
	return -EOPNOTSUPP;
#endif
}

/* The aligned middle of a read, cut in PIECEs that the calling thread and helpers claim
 * one at a time. */
struct job {
	int fd;              /* buffered */
	int dfd;             /* O_DIRECT, or -1 */
	unsigned flags;
	unsigned char *dst;  /* where a0 goes */
	uint64_t a0, a1;
	unsigned char *map;  /* read-only mapping of [a0, a1) for the residency query, or
				MAP_FAILED */
	int no_direct;       /* O_DIRECT was turned down midway (atomic) */
};

/* Whether the DIO_ALIGN page at byte `at` of the job's range is in the page cache;
 * -1 when that cannot be told. */
static int cached_at(struct job *j, uint64_t at)
{
	unsigned char v;
	if (j->map != MAP_FAILED && umi_os_resident(j->map + at, (size_t)DIO_ALIGN, &v) == 0)
		return v & 1;
	return -1;
}

/* Read `len` bytes at file offset `pos` to d, with O_DIRECT, or with pread where O_DIRECT
 * is out (not asked for, or turned down by the file system). */
static int read_run(struct job *j, unsigned char *d, size_t len, uint64_t pos, bool cached)
{
	if (cached || j->dfd < 0 || __atomic_load_n(&j->no_direct, __ATOMIC_RELAXED))
		return pread_full(j->fd, d, len, pos);
	int err = pread_direct(j->dfd, d, len, pos);
	if (err == -EOPNOTSUPP && !(j->flags & UNIMEM_READ_DIRECT)) {
		__atomic_store_n(&j->no_direct, 1, __ATOMIC_RELAXED);
		err = pread_full(j->fd, d, len, pos);
	}
	return err;
}

/* One piece: all cached (pread), none cached (O_DIRECT), or mixed (runs of each). Three
 * pages decide (first, middle, last): a full mincore() of the piece costs about as much
 * as copying it from the cache; only a piece whose samples disagree gets one. Either way
 * of reading is right for any page; the choice only sets the speed. */
static int read_piece(struct job *j, uint64_t off, size_t n)
{
	unsigned char *d = j->dst + off;
	uint64_t pos = j->a0 + off;
	bool adaptive = !(j->flags & (UNIMEM_READ_BUFFERED | UNIMEM_READ_DIRECT));
	if (!adaptive || j->dfd < 0)
		return read_run(j, d, n, pos, j->dfd < 0 || (j->flags & UNIMEM_READ_BUFFERED));
	size_t pages = n / (size_t)DIO_ALIGN;
	int first = cached_at(j, off), mid = cached_at(j, off + pages / 2 * DIO_ALIGN),
	    last = cached_at(j, off + (pages - 1) * DIO_ALIGN);
	if (first < 0 || mid < 0 || last < 0) /* cannot tell: the device, straight in */
		return read_run(j, d, n, pos, false);
	if (first == mid && mid == last)
		return read_run(j, d, n, pos, first == 1);
	unsigned char vec[PIECE / 4096];
	if (umi_os_resident(j->map + off, n, vec) != 0)
		memset(vec, 0, pages);
	int err = 0;
	for (size_t i = 0; i < pages && !err;) {
		bool cached = vec[i] & 1;
		size_t k = i + 1;
		while (k < pages && (bool)(vec[k] & 1) == cached)
			k++;
		size_t at = i * (size_t)DIO_ALIGN;
		err = read_run(j, d + at, (k - i) * (size_t)DIO_ALIGN, pos + at, cached);
		i = k;
	}
	return err;
}

/* Piece `piece` of the job, for umi_parallel(). */
static int read_one(void *arg, size_t piece, unsigned worker)
{
	(void)worker;
	struct job *j = arg;
	uint64_t total = j->a1 - j->a0, off = (uint64_t)piece * PIECE;
	return read_piece(j, off, (size_t)(total - off < PIECE ? total - off : PIECE));
}

/* Most helper threads a read starts, and the least it splits. Helpers copy pages that
 * are in the page cache (a memcpy runs at one core's speed); they never read from the
 * device: parallel buffered streams can defeat the kernel's sequential readahead, and more
 * O_DIRECT reads in flight gained nothing on the virtio disk measured (docs/BENCHMARKS.md). */
#define READ_HELPERS_MAX 3
#define READ_PARALLEL_MIN (4 * PIECE)

/* Whether every piece's sampled pages are in the page cache. */
static bool all_cached(struct job *j)
{
	uint64_t total = j->a1 - j->a0;
	for (uint64_t off = 0; off < total; off += PIECE) {
		uint64_t n = total - off < PIECE ? total - off : PIECE;
		uint64_t pages = n / DIO_ALIGN;
		if (cached_at(j, off) != 1 || cached_at(j, off + pages / 2 * DIO_ALIGN) != 1 ||
		    cached_at(j, off + (pages - 1) * DIO_ALIGN) != 1)
			return false;
	}
	return true;
}

/* Read [a0, a1) (both multiples of DIO_ALIGN) into dst (DIO_ALIGN aligned). */
static int read_aligned(int fd, int dfd, unsigned char *dst, uint64_t a0, uint64_t a1,
			unsigned flags)
{
	struct job j = {.fd = fd, .dfd = dfd, .flags = flags, .dst = dst, .a0 = a0, .a1 = a1,
			.map = MAP_FAILED};
	/* Only to ask which pages are cached (umi_os_resident): never touched. Where the
	 * system page is not DIO_ALIGN a page does not map onto one O_DIRECT unit: no mapping;
	 * the default read then sends every piece O_DIRECT. */
	if (!(flags & UNIMEM_READ_DIRECT) && umi_os_page_size() == DIO_ALIGN)
		j.map = mmap(NULL, (size_t)(a1 - a0), PROT_READ, MAP_SHARED, fd, (off_t)a0);
	unsigned helpers = 0;
	if (a1 - a0 >= READ_PARALLEL_MIN && j.map != MAP_FAILED && all_cached(&j))
		helpers = READ_HELPERS_MAX;
	size_t pieces = (size_t)((a1 - a0 + PIECE - 1) / PIECE);
	int err = umi_parallel(pieces, read_one, &j, helpers);
	if (j.map != MAP_FAILED)
		munmap(j.map, (size_t)(a1 - a0));
	return err;
}

/* Read [off, off + len) of fd's file to dst, where dst - off is a multiple of DIO_ALIGN. */
int umi_read_range(int fd, unsigned char *dst, uint64_t off, size_t len, unsigned flags)
{
	if (len == 0)
		return 0;
	uint64_t end = off + len;
	uint64_t a0 = (off + DIO_ALIGN - 1) & ~(DIO_ALIGN - 1);
	uint64_t a1 = end & ~(DIO_ALIGN - 1);
	if (a0 >= a1) /* under one aligned block: nothing for O_DIRECT to do */
		return flags & UNIMEM_READ_DIRECT ? -EOPNOTSUPP : pread_full(fd, dst, len, off);

	int dfd = -1;
	if (!(flags & UNIMEM_READ_BUFFERED)) {
		dfd = open_direct(fd);
		if (dfd < 0 && (flags & UNIMEM_READ_DIRECT))
			return dfd;
	}
	/* Head and tail, under 4 KiB each, through the page cache. */
	int err = pread_full(fd, dst, (size_t)(a0 - off), off);
	if (!err)
		err = read_aligned(fd, dfd, dst + (a0 - off), a0, a1, flags);
	if (!err)
		err = pread_full(fd, dst + (a1 - off), (size_t)(end - a1), a1);
	if (dfd >= 0)
		close(dfd);
	return err;
}

int unimem_tape_read_fd(unimem_tape *t, int fd, uint64_t offset, size_t length,
			unsigned flags, void **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!t || (flags & ~(unsigned)KNOWN_FLAGS) ||
	    (flags & KNOWN_FLAGS) == KNOWN_FLAGS)
		return -EINVAL;
	if (fd < 0)
		return -EBADF;
	struct stat st;
	if (fstat(fd, &st) != 0)
		return -errno;
	/* Not opened for reading (write-only, O_PATH): the O_DIRECT reopen must not read
	 * through it either. */
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	if ((fl & O_ACCMODE) == O_WRONLY
#ifdef O_PATH
	    || (fl & O_PATH)
#endif
	)
		return -EBADF;
	if (offset > (uint64_t)st.st_size || length > (uint64_t)st.st_size - offset)
		return -EINVAL;
	if (length == 0)
		return 0;
	uint64_t head = offset & (DIO_ALIGN - 1);
	if (length > SIZE_MAX - head)
		return -ENOSPC;
	size_t room_len = (size_t)head + length;
	uint64_t before;
	unsigned char *room = umi_tape_take_room(t, room_len, (size_t)DIO_ALIGN, &before);
	if (!room)
		return -ENOSPC;
	/* From the 4 KiB boundary: the bytes before `offset` hold the file's too. */
	int err = umi_read_range(fd, room, offset - head, room_len, flags);
	if (err) {
		umi_tape_give_back(t, before, (uint64_t)(room - t->base) + room_len);
		return err;
	}
	*out = room + head;
	return 0;
}

int unimem_tape_read_file(unimem_tape *t, const char *path, unsigned flags, void **out,
			  size_t *length)
{
	if (length)
		*length = 0;
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!t || !path)
		return -EINVAL;
	int fd = umi_open_regular(path);
	if (fd < 0)
		return fd;
	struct stat st;
	int err = 0;
	if (fstat(fd, &st) != 0)
		err = -errno;
	else if ((uint64_t)st.st_size > SIZE_MAX)
		err = -ENOSPC;
	if (!err)
		err = unimem_tape_read_fd(t, fd, 0, (size_t)st.st_size, flags, out);
	if (!err && length)
		*length = (size_t)st.st_size;
	close(fd);
	return err;
}

/* open(path) for reading without blocking (a FIFO with no writer would block open()),
 * refusing what is not a regular file with -EINVAL; then blocking reads again. */
int umi_open_regular(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return -errno;
	struct stat st;
	int err = 0, fl;
	if (fstat(fd, &st) != 0)
		err = -errno;
	else if (!S_ISREG(st.st_mode))
		err = -EINVAL;
	else if ((fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0)
		err = -errno;
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

/* Move [p, p + len) down by s bytes (to p - s), s < 4096: the range is cut in chunks of
 * SHIFT_CHUNK or more (the last takes the rest); each saves its first s bytes, moves the
 * rest down inside itself, and the saved bytes go to the previous chunk's tail once all
 * have moved. Chunks run on helper threads where CPUs are idle. */
struct shift {
	unsigned char *p;
	size_t len, s, chunk, chunks;
	unsigned char *saved;    /* s bytes per chunk */
};

/* Chunk k, for umi_parallel(). */
static int shift_one(void *arg, size_t k, unsigned worker)
{
	(void)worker;
	struct shift *sh = arg;
	unsigned char *c = sh->p + k * sh->chunk;
	size_t n = k + 1 == sh->chunks ? sh->len - k * sh->chunk : sh->chunk;
	if (k == 0) {
		memmove(c - sh->s, c, n);
	} else {
		memcpy(sh->saved + k * sh->s, c, sh->s);
		memmove(c, c + sh->s, n - sh->s);
	}
	return 0;
}

#define SHIFT_CHUNK ((size_t)8 << 20)

void umi_shift_down(unsigned char *p, size_t len, size_t s)
{
	if (s == 0 || len == 0)
		return;
	size_t chunks = len / SHIFT_CHUNK;
	unsigned char *saved = chunks > 1 ? malloc(chunks * s) : NULL;
	if (!saved) { /* small, or no memory for the saved heads: one move */
		memmove(p - s, p, len);
		return;
	}
	struct shift sh = {.p = p, .len = len, .s = s, .chunk = SHIFT_CHUNK, .chunks = chunks,
			   .saved = saved};
	umi_parallel(chunks, shift_one, &sh, READ_HELPERS_MAX);
	for (size_t k = 1; k < chunks; k++)
		memcpy(p + k * SHIFT_CHUNK - s, saved + k * s, s);
	free(saved);
}

/* Whether every sampled page of [off, off + len) of fd's file is in the page cache (as
 * the reads above decide: such a range is read with pread alone, at any address). */
bool umi_range_cached(int fd, uint64_t off, size_t len)
{
#ifdef O_DIRECT
	uint64_t a0 = off & ~(DIO_ALIGN - 1), a1 = (off + len) & ~(DIO_ALIGN - 1);
	if (a1 <= a0)
		return true;
	if (umi_os_page_size() != DIO_ALIGN)
		return false;
	struct job j = {.fd = fd, .dfd = -1, .a0 = a0, .a1 = a1};
	j.map = mmap(NULL, (size_t)(a1 - a0), PROT_READ, MAP_SHARED, fd, (off_t)a0);
	if (j.map == MAP_FAILED)
		return false;
	bool all = all_cached(&j);
	munmap(j.map, (size_t)(a1 - a0));
	return all;
#else
	/* No O_DIRECT here: every read is a pread, at any address. */
	(void)fd; (void)off; (void)len;
	return true;
#endif
}
