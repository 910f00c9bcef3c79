/* SPDX-License-Identifier: MIT */
/* Files read straight into a Tape: page-cached pieces with pread, the others with
 * O_DIRECT into the Tape's own pages; no bounce buffer anywhere. */
#define _GNU_SOURCE
#include "internal.h"

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

/* A second open of fd's file with O_DIRECT, or -1 where that is refused. */
static int open_direct(int fd)
{
#ifdef O_DIRECT
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	int dfd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (dfd < 0)
		return -1;
	struct stat a, b;
	/* The same file (not something else at a reused path). */
	if (fstat(fd, &a) != 0 || fstat(dfd, &b) != 0 || a.st_dev != b.st_dev ||
	    a.st_ino != b.st_ino) {
		close(dfd);
		return -1;
	}
	return dfd;
#else
	(void)fd;
	return -1;
#endif
}

/* Read [a0, a1) (both multiples of DIO_ALIGN) into dst (DIO_ALIGN aligned): cached
 * pages with pread on fd, the others with O_DIRECT on *dfd. *dfd becomes -1 (closed)
 * when the file system turns O_DIRECT down midway, unless `must_direct`. */
static int read_aligned(int fd, int *dfd, unsigned char *dst, uint64_t a0, uint64_t a1,
			unsigned flags)
{
	/* Residency is asked per system page; only where that page is DIO_ALIGN does a
	 * page map onto one O_DIRECT unit (elsewhere every piece is read with O_DIRECT). */
	const size_t page = (size_t)DIO_ALIGN;
	bool adaptive = !(flags & (UNIMEM_READ_BUFFERED | UNIMEM_READ_DIRECT));
	unsigned char *map = MAP_FAILED;
#ifdef __linux__
	/* Only to ask mincore() which pages are cached: never touched. */
	if (adaptive && *dfd >= 0 && a1 > a0 && umi_page_size() == DIO_ALIGN)
		map = mmap(NULL, (size_t)(a1 - a0), PROT_READ, MAP_SHARED, fd, (off_t)a0);
#endif
	unsigned char vec[PIECE / 4096];
	int err = 0;
	for (uint64_t pos = a0; pos < a1 && !err;) {
		size_t n = (size_t)(a1 - pos < PIECE ? a1 - pos : PIECE);
		unsigned char *d = dst + (pos - a0);
		if (*dfd < 0) {
			err = pread_full(fd, d, n, pos);
			pos += n;
			continue;
		}
		size_t pages = n / page;
		bool known = false;
#ifdef __linux__
		known = map != MAP_FAILED && mincore(map + (pos - a0), n, vec) == 0;
#endif
		if (!adaptive || !known)
			memset(vec, 0, pages);  /* read it all with O_DIRECT */
		/* Runs of cached and of uncached pages, each read its way. */
		for (size_t i = 0; i < pages && !err;) {
			bool cached = vec[i] & 1;
			size_t j = i + 1;
			while (j < pages && (bool)(vec[j] & 1) == cached)
				j++;
			size_t off = i * page, len = (j - i) * page;
			if (cached || *dfd < 0) {
				err = pread_full(fd, d + off, len, pos + off);
			} else {
				err = pread_direct(*dfd, d + off, len, pos + off);
				if (err == -EOPNOTSUPP && !(flags & UNIMEM_READ_DIRECT)) {
					close(*dfd);
					*dfd = -1;
					err = pread_full(fd, d + off, len, pos + off);
				}
			}
			i = j;
		}
		pos += n;
	}
	if (map != MAP_FAILED)
		munmap(map, (size_t)(a1 - a0));
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
			return -EOPNOTSUPP;
	}
	/* Head and tail, under 4 KiB each, through the page cache. */
	int err = pread_full(fd, dst, (size_t)(a0 - off), off);
	if (!err)
		err = read_aligned(fd, &dfd, dst + (a0 - off), a0, a1, flags);
	if (!err)
		err = pread_full(fd, dst + (a1 - off), (size_t)(end - a1), a1);
	if (dfd >= 0)
		close(dfd);
	return err;
}

/* Take [old cursor, ...) room for `len` bytes at 4096 alignment; on failure later, give
 * it back while nothing was taken after it. */
void *umi_tape_take_room(unimem_tape *t, size_t len)
{
	return unimem_tape_take(t, len, (size_t)DIO_ALIGN);
}

void umi_tape_give_back(unimem_tape *t, void *room, size_t len)
{
	uint64_t start = (uint64_t)((unsigned char *)room - t->base);
	uint64_t end = start + len;
	/* Padding before the room (alignment) stays taken: the cursor goes back to the
	 * room's start only, and only if it still ends with this room. */
	__atomic_compare_exchange_n(&t->cursor, &end, start, false, __ATOMIC_RELAXED,
				    __ATOMIC_RELAXED);
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
	if (offset > (uint64_t)st.st_size || length > (uint64_t)st.st_size - offset)
		return -EINVAL;
	if (length == 0)
		return 0;
	uint64_t head = offset & (DIO_ALIGN - 1);
	if (length > SIZE_MAX - head)
		return -ENOSPC;
	size_t room_len = (size_t)head + length;
	unsigned char *room = umi_tape_take_room(t, room_len);
	if (!room)
		return -ENOSPC;
	int err = umi_read_range(fd, room + head, offset, length, flags);
	if (err) {
		umi_tape_give_back(t, room, room_len);
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
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	int err = 0;
	if (fstat(fd, &st) != 0)
		err = -errno;
	else if (!S_ISREG(st.st_mode))
		err = -EINVAL;
	else if ((uint64_t)st.st_size > SIZE_MAX)
		err = -ENOSPC;
	if (!err)
		err = unimem_tape_read_fd(t, fd, 0, (size_t)st.st_size, flags, out);
	if (!err && length)
		*length = (size_t)st.st_size;
	close(fd);
	return err;
}
