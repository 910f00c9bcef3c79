/* SPDX-License-Identifier: MIT */
/* Checkpoints for the streaming-weights tests (test_weights.c, test_gpu.c): safetensors
 * files and model.safetensors.index.json written here, with tensors of odd sizes and a
 * data section that starts 8-byte aligned but not 4096-aligned, as the safetensors
 * library writes them. Every byte of tensor data is a function of (file, offset). */
#ifndef UNIMEM_TEST_WEIGHTS_FILES_H
#define UNIMEM_TEST_WEIGHTS_FILES_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct wf_tensor {
	const char *name;
	const char *dtype;
	size_t elem;
	int ndim;
	int64_t shape[4];
};

static inline size_t wf_bytes(const struct wf_tensor *t)
{
	size_t n = t->elem;
	for (int d = 0; d < t->ndim; d++)
		n *= (size_t)t->shape[d];
	return n;
}

static inline unsigned char wf_byte(unsigned seed, uint64_t at)
{
	uint64_t x = (at + 1) * 0x9e3779b97f4a7c15ull ^ (uint64_t)seed * 0xbf58476d1ce4e5b9ull;
	x ^= x >> 31;
	return (unsigned char)(x * 0x94d049bb133111ebull >> 56);
}

/* Write a safetensors file of n tensors (data order as given), header padded with spaces
 * to a multiple of 8 (data_at = 8 + that). Returns the data section's size, or 0 on a
 * failure. `meta` (may be NULL) is the "__metadata__" object's text. */
static inline size_t wf_write(const char *path, const struct wf_tensor *t, size_t n,
			      const char *meta, unsigned seed)
{
	char *hdr = malloc(65536 + n * 256);
	if (!hdr)
		return 0;
	size_t h = 0, off = 0;
	h += (size_t)sprintf(hdr + h, "{");
	if (meta)
		h += (size_t)sprintf(hdr + h, "\"__metadata__\":%s%s", meta, n ? "," : "");
	for (size_t i = 0; i < n; i++) {
		size_t b = wf_bytes(&t[i]);
		h += (size_t)sprintf(hdr + h, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", i ? "," : "",
				     t[i].name, t[i].dtype);
		for (int d = 0; d < t[i].ndim; d++)
			h += (size_t)sprintf(hdr + h, "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
		h += (size_t)sprintf(hdr + h, "],\"data_offsets\":[%zu,%zu]}", off, off + b);
		off += b;
	}
	h += (size_t)sprintf(hdr + h, "}");
	while (h % 8)
		hdr[h++] = ' ';
	FILE *f = fopen(path, "wb");
	if (!f) {
		free(hdr);
		return 0;
	}
	unsigned char len[8];
	for (int i = 0; i < 8; i++)
		len[i] = (unsigned char)((uint64_t)h >> (8 * i));
	fwrite(len, 1, 8, f);
	fwrite(hdr, 1, h, f);
	unsigned char buf[4096];
	for (size_t at = 0; at < off;) {
		size_t k = off - at < sizeof buf ? off - at : sizeof buf;
		for (size_t i = 0; i < k; i++)
			buf[i] = wf_byte(seed, at + i);
		fwrite(buf, 1, k, f);
		at += k;
	}
	free(hdr);
	return fclose(f) == 0 ? off : 0;
}

/* The expected bytes of tensor i of a file written by wf_write with `seed`. */
static inline int wf_check(const unsigned char *got, const struct wf_tensor *t, size_t i,
			   unsigned seed)
{
	uint64_t off = 0;
	for (size_t k = 0; k < i; k++)
		off += wf_bytes(&t[k]);
	size_t b = wf_bytes(&t[i]);
	for (size_t k = 0; k < b; k++)
		if (got[k] != wf_byte(seed, off + k))
			return -1;
	return 0;
}

static inline int wf_write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

#endif
