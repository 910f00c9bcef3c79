/* SPDX-License-Identifier: MIT */
/* The descriptor of an exported Block (format in src/net.h, docs/NET.md). What comes in is
 * hostile: every field is checked before anything trusts it. */
#include "net_internal.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include <unimem/net.h>

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* CRC-32 (IEEE), bitwise: descriptors are a few hundred bytes, read once. */
static uint32_t crc32(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
	}
	return ~c;
}

void umi_net_desc_write(const struct umi_net_desc *d, uint8_t *buf)
{
	put32(buf, UMI_NET_MAGIC);
	put16(buf + 4, d->version);
	put16(buf + 6, d->flags);
	put64(buf + 8, d->size);
	put64(buf + 16, d->addr);
	put16(buf + 24, d->family);
	put16(buf + 26, d->port);
	memcpy(buf + 28, d->ip, 16);
	put16(buf + 44, d->rkey_len);
	memcpy(buf + UMI_NET_HEAD, d->rkey, d->rkey_len);
	size_t n = UMI_NET_HEAD + d->rkey_len;
	put32(buf + n, crc32(buf, n));
}

int umi_net_desc_parse(struct umi_net_desc *d, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	memset(d, 0, sizeof *d);
	if (len < 8 || get32(p) != UMI_NET_MAGIC)
		return -EBADMSG;
	/* The version is read before the rest, whose layout it decides. */
	if (get16(p + 4) != UMI_NET_VERSION)
		return -EPROTONOSUPPORT;
	if (len < UMI_NET_HEAD + UMI_NET_TRAILER || len > UNIMEM_NET_DESC_MAX)
		return -EBADMSG;
	d->version = get16(p + 4);
	d->flags = get16(p + 6);
	d->size = get64(p + 8);
	d->addr = get64(p + 16);
	d->family = get16(p + 24);
	d->port = get16(p + 26);
	memcpy(d->ip, p + 28, 16);
	d->rkey_len = get16(p + 44);
	if (umi_net_desc_len(d->rkey_len) != len)
		return -EBADMSG;
	size_t n = UMI_NET_HEAD + d->rkey_len;
	if (get32(p + n) != crc32(p, n))
		return -EBADMSG;
	/* A forged descriptor with a good checksum: the fields must still make sense. */
	if ((d->flags & ~(unsigned)UNIMEM_NET_READONLY) || d->size == 0 || d->rkey_len == 0 ||
	    d->addr == 0 || d->addr + d->size < d->addr || d->port == 0 ||
	    (d->family != AF_INET && d->family != AF_INET6))
		return -EBADMSG;
	d->rkey = p + UMI_NET_HEAD;
	return 0;
}
