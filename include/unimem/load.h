/* SPDX-License-Identifier: MIT */
/* unimem loading: files read straight into a Tape's pinned memory (no bounce buffer, no
 * copy into a framework buffer afterwards). Safetensors weights, placed in a Tape and
 * returned as views, are <unimem/safetensors.h> (declared here before 0.2.0).
 *
 * How a read goes (Linux): the file range is cut at 4 KiB boundaries. Each aligned piece
 * whose pages are already in the page cache is copied from it with pread (the fastest
 * source there is); each piece that is not is read with O_DIRECT, the device writing
 * into the Tape's pages themselves, with the page cache bypassed. The unaligned head and
 * tail (under 4 KiB each) are read with pread. Where the file system refuses O_DIRECT
 * (tmpfs, some network and FUSE file systems) everything is read with pread. The cache
 * residency comes from mincore(), which Linux answers truthfully only for files the
 * caller owns or may write; for other files it says "all cached", and every piece is
 * read with pread. macOS reads with pread. */
#ifndef UNIMEM_LOAD_H
#define UNIMEM_LOAD_H

#include "common.h"
#include "block.h"
#include "tape.h"
#include "view.h"

UNIMEM_BEGIN_DECLS

/* Flags of unimem_tape_read_fd(), unimem_tape_read_file() and unimem_safetensors_load(). */
enum {
	/* pread only, never O_DIRECT. */
	UNIMEM_READ_BUFFERED = 1u << 0,
	/* O_DIRECT for every aligned piece, cached or not; fail with -EOPNOTSUPP where the
	 * file system refuses it (instead of falling back to pread). */
	UNIMEM_READ_DIRECT = 1u << 1,
};

/* Read `length` bytes of the open file `fd` from byte `offset` into Tape t. The room is
 * taken from t at 4096-byte alignment, starting at `offset` rounded down to 4096, so
 * that the byte at `offset` lands at an address equal to `offset` modulo 4096 (the up to
 * 4095 bytes before it are taken and read from the file too); *out is set to that
 * address. fd's own file position and flags are left alone (O_DIRECT goes through a
 * second open of the same file, for reading). length 0 takes nothing and sets *out to
 * NULL.
 * Returns 0, or a negative errno with *out NULL:
 *   -EINVAL      t or out NULL, flags unknown or both, or the range passes the end of
 *                the file (any non-regular file, whose size is 0)
 *   -EBADF       fd negative, not open, or not open for reading (O_WRONLY, O_PATH)
 *   -ENOSPC      the Tape has no room for it
 *   -EOPNOTSUPP  UNIMEM_READ_DIRECT and the file system refuses O_DIRECT
 *   -EMFILE, -ENFILE  UNIMEM_READ_DIRECT and no descriptor is free for the O_DIRECT open
 *                (the default then reads with pread)
 *   -EIO         the file got shorter while it was read
 *   or another errno of pread/read
 * On failure the room (its alignment padding included) is given back to the Tape when
 * nothing was taken after it; otherwise it stays taken, unused (never another's bytes).
 * Thread-safe as unimem_tape_take() (other threads may take from t meanwhile). */
UNIMEM_API int unimem_tape_read_fd(unimem_tape *t, int fd, uint64_t offset, size_t length,
				   unsigned flags, void **out);

/* Read the whole file at `path` into Tape t, as unimem_tape_read_fd() from offset 0:
 * *out is 4096-aligned. *length (may be NULL) is set to the file's size. The file is
 * opened without blocking: anything but a regular file (a directory, a FIFO with or
 * without a writer, a device, a socket) is refused with -EINVAL, never waited on.
 * Returns 0 or a negative errno as unimem_tape_read_fd(), or of open() (-ENOENT,
 * -EACCES, ...). */
UNIMEM_API int unimem_tape_read_file(unimem_tape *t, const char *path, unsigned flags,
				     void **out, size_t *length);

UNIMEM_END_DECLS

#endif
