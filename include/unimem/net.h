/* SPDX-License-Identifier: MIT */
/* unimem beyond one machine: a whole Block readable and writable from other hosts through
 * UCX, with one registration per Block, addressed by (Block, offset). UCX (libucp.so.0) is
 * loaded at run time: without it every call returns -ENOSYS and unimem_strerror() names the
 * library that could not be loaded. See docs/NET.md (use, costs, security model). */
#ifndef UNIMEM_NET_H
#define UNIMEM_NET_H

#include "common.h"
#include "block.h"

UNIMEM_BEGIN_DECLS

typedef struct unimem_remote unimem_remote;

/* Flags of unimem_net_export(). */
enum {
	/* Importers may read, not write: their writes fail with -EACCES, and the exporter
	 * registers a read-only mapping of the Block, so that no write through the
	 * descriptor can change the Block (docs/NET.md says what a hostile peer can do). */
	UNIMEM_NET_READONLY = 1u << 0,
};

/* The longest descriptor unimem_net_export() writes: a buffer of this size always fits. */
#define UNIMEM_NET_DESC_MAX 256

/* Export the whole Block b: register its pages with UCX once (one ucp_mem_map) and write
 * a descriptor of *len bytes into desc (capacity cap): format version, size, the listener
 * address of this process (UNIMEM_NET_ADDR, default the first IPv4 address of an interface
 * that is up, else 127.0.0.1; port UNIMEM_NET_PORT, default any) and the packed remote key.
 * Send it by any means; whoever holds it may read (and write unless UNIMEM_NET_READONLY)
 * the Block. Importers are served by the library's export helper process (started at the
 * first export; it maps the Block's memfd and serves those pages), so that an abort inside
 * UCX ends the helper, not this process: no call is needed on this side. If the helper
 * dies, its exports are revoked, and exporting the Block again gives a new descriptor.
 * Without a helper (UNIMEM_NET_EXPORTER=inprocess, none installed) this process serves
 * them from a progress thread, as it does for a Block without an fd (UNIMEM_BLOCK_PRIVATE):
 * there an abort inside UCX ends this process.
 * docs/NET.md, "The export helper process".
 * Returns 0, or a negative errno:
 *   -EINVAL   b, desc or len is NULL, or an unknown flag
 *   -ENOTSUP  UNIMEM_NET_READONLY for a Block without an fd (UNIMEM_BLOCK_PRIVATE): the
 *            read-only view that tcp needs is a second mapping of the fd
 *   -ENOSPC   cap is too small (*len is set to the size needed; nothing is exported)
 *   -EALREADY b is already exported, and that export still serves
 *   -ENOENT, -EACCES, -ECHILD, -ETIMEDOUT  the export helper cannot be run, does not
 *            start, or stopped answering (killed); nothing is exported
 *   -ENOSYS   UCX is not available (unimem_strerror names the library)
 *   -EADDRNOTAVAIL  UNIMEM_NET_ADDR is not an address, or the listener cannot bind it
 *   -ENOMEM, -EIO   UCX refused (unimem_strerror gives UCX's message)
 * Thread-safe. */
UNIMEM_API int unimem_net_export(const unimem_block *b, unsigned flags, void *desc, size_t cap,
				 size_t *len);

/* Revoke the export of b: its listener and every connection it accepted are closed and the
 * registration dropped; importers then get errors, never the Block's memory. Closing the
 * Block does the same. Returns 0, -EINVAL (b is NULL), -ENOENT (b is not exported) or
 * -ENOSYS (no UCX). Thread-safe. */
UNIMEM_API int unimem_net_unexport(const unimem_block *b);

/* Connect to the exporter a descriptor names and return a handle in *out (NULL on failure).
 * The descriptor is checked (length, magic, version, checksum, size, address) before
 * anything is sent; connecting is bounded by the timeout (UNIMEM_NET_TIMEOUT_MS, default
 * 10000 ms). Returns 0, or a negative errno:
 *   -EINVAL   out or desc is NULL
 *   -EBADMSG  not a descriptor: truncated, forged (magic, checksum, sizes) or random bytes
 *   -EPROTONOSUPPORT  a descriptor of another format version
 *   -ECONNREFUSED, -ECONNRESET, -EHOSTUNREACH, -ETIMEDOUT  the exporter cannot be reached
 *            (gone, unexported, or not answering within the timeout)
 *   -ENOSYS   UCX is not available;  -ENOMEM, -EIO
 * Thread-safe (each handle has its own UCX worker). */
UNIMEM_API int unimem_net_import(unimem_remote **out, const void *desc, size_t len);

/* The size of the remote Block in bytes; 0 for NULL. */
UNIMEM_API size_t unimem_remote_size(const unimem_remote *r);

/* Copy [offset, offset + len) of the remote Block into dst (one-sided: ucp_get_nbx),
 * blocking until done or until the handle's timeout. Returns 0, or a negative errno:
 *   -EINVAL   r is NULL, or dst is NULL with len > 0
 *   -ERANGE   the range reaches outside the remote Block
 *   -ECONNRESET, -ENOTCONN, -ETIMEDOUT, -EIO  the exporter is gone, unexported the Block,
 *             or did not answer in time; the handle is then broken (every later call fails
 *             with -ENOTCONN): close it
 * dst's contents are unspecified after a failure. Not thread-safe per handle. */
UNIMEM_API int unimem_remote_read(unimem_remote *r, uint64_t offset, void *dst, size_t len);

/* Copy src into [offset, offset + len) of the remote Block (ucp_put_nbx), blocking until
 * the data is in the remote Block (a flush) or until the timeout. Returns what
 * unimem_remote_read() returns, and -EACCES for a read-only export. Not thread-safe per
 * handle. */
UNIMEM_API int unimem_remote_write(unimem_remote *r, uint64_t offset, const void *src,
				   size_t len);

/* Non-blocking forms, for pipelining: start a read or a write and return once it is
 * posted (up to 16 in flight per handle; a 17th waits for the oldest). dst and src must
 * stay valid, and dst unread, until unimem_remote_wait() returns. Bounds, read-only and a
 * broken handle are checked at once, with the codes of unimem_remote_read() and
 * unimem_remote_write(); a transfer that fails later is reported by unimem_remote_wait().
 * Not thread-safe per handle. */
UNIMEM_API int unimem_remote_read_start(unimem_remote *r, uint64_t offset, void *dst, size_t len);
UNIMEM_API int unimem_remote_write_start(unimem_remote *r, uint64_t offset, const void *src,
					 size_t len);

/* Wait until every started transfer of r is complete, writes in the remote Block (a
 * flush). Returns 0, -EINVAL (r is NULL), or the first failure (-ECONNRESET, -ETIMEDOUT,
 * -ENOTCONN, -EIO; the handle is then broken). Not thread-safe per handle. */
UNIMEM_API int unimem_remote_wait(unimem_remote *r);

/* Set how long read, write and close wait for the exporter on this handle (milliseconds,
 * > 0). Returns 0 or -EINVAL. Not thread-safe per handle. */
UNIMEM_API int unimem_remote_set_timeout(unimem_remote *r, unsigned ms);

/* Disconnect and free the handle. NULL is a no-op. */
UNIMEM_API void unimem_remote_close(unimem_remote *r);


UNIMEM_END_DECLS

#endif
