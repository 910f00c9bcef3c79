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

#endif

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
