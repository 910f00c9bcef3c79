/* SPDX-License-Identifier: MIT */
/* unimem net internals shared by src/net_*.c. Never installed. */
#ifndef UNIMEM_NET_INTERNAL_H
#define UNIMEM_NET_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* Descriptor format (docs/NET.md), little-endian:
 *   0 magic "UNET"   4 version u16   6 flags u16     8 size u64    16 remote address u64
 *  24 family u16    26 port u16     28 IP (16 bytes) 44 rkey length u16
 *  46 packed rkey   then a CRC-32 of everything before it. */
#define UMI_NET_MAGIC 0x54454e55u
#define UMI_NET_VERSION 1u
#define UMI_NET_HEAD 46u
#define UMI_NET_TRAILER 4u

struct umi_net_desc {
	uint16_t version;
	uint16_t flags;      /* UNIMEM_NET_* */
	uint64_t size;
	uint64_t addr;       /* the exporter's address of the Block's first byte */
	uint16_t family;     /* AF_INET or AF_INET6 */
	uint16_t port;       /* host order */
	uint8_t ip[16];      /* network order; 4 bytes for AF_INET */
	uint16_t rkey_len;
	const uint8_t *rkey; /* inside the buffer that was parsed */
};

/* Bytes a descriptor with a packed rkey of rkey_len bytes takes. */
static inline size_t umi_net_desc_len(size_t rkey_len)
{
	return UMI_NET_HEAD + rkey_len + UMI_NET_TRAILER;
}

/* Write d (with d->rkey) into buf, which holds umi_net_desc_len(d->rkey_len) bytes. */
void umi_net_desc_write(const struct umi_net_desc *d, uint8_t *buf);

/* Parse len bytes: 0, -EBADMSG (truncated, forged, random) or -EPROTONOSUPPORT (another
 * version). d->rkey points into buf. */
int umi_net_desc_parse(struct umi_net_desc *d, const void *buf, size_t len);


#include "net_ucp.h"

/* The UCP API and the process's one context, set once by umi_net_ready(). */
extern struct umi_ucp umi_ucp;
extern umi_ucp_context_h umi_ucp_ctx;

/* Load UCX and make the context, once: 0, or -ENOSYS (no UCX; the reason is kept for
 * unimem_strerror) or -ENOTSUP (called in a child forked after UCX was set up).
 * Thread-safe. */
int umi_net_ready(void);

/* Note that UCX call `call` failed with status s for this thread; the negative errno. */
int umi_net_fail(umi_ucs_status s, const char *call);

/* Note a failure of this thread with message text; returns -err. */
int umi_net_note(int err, const char *text);

/* The timeout of a new handle: UNIMEM_NET_TIMEOUT_MS, default 10000. */
unsigned umi_net_default_timeout(void);

/* ---- exporting (net_ucx.c), here or through the helper process (net_helper.c) ---- */

#include <stdatomic.h>
#include <stdbool.h>

struct unimem_block;

/* Exports alive, in this process and in its helper: the Block close hook reads it. */
extern atomic_size_t umi_net_exported;

/* Where an export listens: the exporting process's UNIMEM_NET_ADDR and UNIMEM_NET_PORT
 * ("" when unset; "?" when too long to be one), read by umi_net_where_here() and sent to
 * the helper with each request. */
struct umi_net_where {
	char addr[64];
	char port[16];
};

void umi_net_where_here(struct umi_net_where *w);

/* Export `size` bytes at `pages` in this process under `key` (what unexport names): one
 * registration, a listener on w, the descriptor into desc (cap bytes, *len set; -ENOSPC
 * with *len the size needed). A read-only export registers a PROT_READ mapping of ro_fd,
 * or, when ro_fd is -1, `pages` as they are (a mapping that cannot be written). */
int umi_net_export_here(const void *key, void *pages, size_t size, int ro_fd, unsigned flags,
			const struct umi_net_where *w, void *desc, size_t cap, size_t *len);

/* Revoke the export of `key` made here: 0, or -ENOENT. */
int umi_net_unexport_here(const void *key);

/* Export Block b through the helper process: 0 or a negative errno as unimem_net_export;
 * 1 when there is no helper (UNIMEM_NET_EXPORTER=inprocess, or none installed beside the
 * library): the caller exports in this process. */
int umi_net_helper_export(const struct unimem_block *b, unsigned flags, void *desc, size_t cap,
			  size_t *len);

/* Revoke an export made through the helper: 0 (also when the helper has died: nothing
 * serves it), or 1 when b has no such export. */
int umi_net_helper_unexport(const struct unimem_block *b);

/* The helper process's loop (net_serve.c, run by unimem-net-exporter): serve the export
 * requests of the process at the other end of unix socket fd until it closes; returns the
 * exit status. */
int umi_net_serve(int fd);

/* Requests and replies between a process and its helper (one SOCK_SEQPACKET message
 * each; an export request carries the Block's memfd). */
#define UMI_NETH_MAGIC 0x48454e55u /* "UNEH" */
#define UMI_NETH_VERSION 1u
enum { UMI_NETH_HELLO = 1, UMI_NETH_EXPORT = 2, UMI_NETH_UNEXPORT = 3 };

struct umi_neth_req {
	uint32_t magic, op, flags, version;
	uint64_t token; /* names the export */
	uint64_t size;  /* the Block's bytes */
	uint64_t cap;   /* the caller's descriptor buffer */
	struct umi_net_where where;
};

struct umi_neth_rep {
	uint32_t magic, op;
	int32_t rc;     /* 0 or a negative errno */
	uint32_t len;   /* the descriptor's bytes (or those needed, with -ENOSPC) */
	uint64_t token;
	int64_t pid;    /* the helper's (hello) */
	uint32_t version;
	uint8_t desc[256];
	char msg[240];  /* what went wrong, for unimem_strerror */
};

#endif
