/* SPDX-License-Identifier: MIT */
/* safetensors: the loader that places the data in a Tape with one read (O_DIRECT where it
 * can, see load.c) and hands out views; the header's schema is safetensors_header.c. */
#define _GNU_SOURCE
#include "load_pvt.h"
#include "tape_pvt.h"
#include "safetensors_pvt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* As huggingface/safetensors: a longer header is refused before it is read. */
#define HEADER_MAX ((uint64_t)100000000)

#define BAD (-EBADMSG)

/* Place the data (entries in data order) in one room of t, taken once: the data section
 * starts at an address aligned to min(A, 4096), A = align or UNIMEM_SAFETENSORS_ALIGN;
 * each tensor whose place there is not aligned to max(A, its element) gets a place of its
 * own after the data, in the same room. The data is read at that placement where pread
 * alone reads it (cached, or UNIMEM_READ_BUFFERED); otherwise at its file offset modulo
 * 4096 (O_DIRECT) and moved down by under A bytes, in parallel chunks. On failure the
 * room (padding included) is given back while nothing was taken after it. */
static int place(unimem_safetensors *st, struct entry *entries, unimem_tape *t, int fd,
		 uint64_t data_at, uint64_t data_len, size_t align, unsigned flags)
{
	size_t A = align ? align : UNIMEM_SAFETENSORS_ALIGN;
	uint64_t g = A < 4096 ? A : 4096;
	uint64_t from = data_at & ~(uint64_t)4095, s = data_at & (g - 1);
	uint64_t d0 = data_at - from - s; /* the data's start in the room */
	uint64_t end = d0 + data_len;
	for (size_t i = 0; i < st->count; i++) {
		struct entry *e = &entries[i];
		size_t esize = unimem_dtype_size(e->dtype);
		uint64_t a = A > esize ? A : esize, bytes = e->end - e->begin;
		e->at = d0 + e->begin;
		if (bytes == 0) {
			e->at = 0; /* no element to align: the room's start will do */
		} else if (e->at & (a - 1)) {
			uint64_t mv = (end + a - 1) & ~(a - 1);
			if (mv < end || mv + bytes < mv)
				return -ENOSPC;
			e->at = mv;
			end = mv + bytes;
			st->moved++;
		}
	}
	unsigned char *room = NULL;
	uint64_t before = 0;
	if (data_len) {
		if (end > SIZE_MAX)
			return -ENOSPC;
		room = umi_tape_take_room(t, (size_t)end, A > 4096 ? A : 4096, &before);
		if (!room)
			return -ENOSPC;
		int err;
		if (s && ((flags & UNIMEM_READ_BUFFERED) ||
			  (!(flags & UNIMEM_READ_DIRECT) &&
			   umi_range_cached(fd, data_at, (size_t)data_len)))) {
			err = umi_read_range(fd, room + d0, data_at, (size_t)data_len,
					     flags | UNIMEM_READ_BUFFERED);
		} else {
			err = umi_read_range(fd, room, from, (size_t)(d0 + s + data_len), flags);
			if (!err)
				umi_shift_down(room + d0 + s, (size_t)data_len, (size_t)s);
		}
		if (err) {
			umi_tape_give_back(t, before, (uint64_t)(room - t->base) + end);
			st->moved = 0;
			return err;
		}
	}
	const unimem_block *b = t->block;
	unsigned char *bptr = unimem_block_ptr(b), *r = room ? room : t->base;
	for (size_t i = 0; i < st->count; i++) {
		struct entry *e = &entries[i];
		if (e->at >= d0 + data_len) /* moved: one copy, of this tensor alone */
			memcpy(r + e->at, r + d0 + e->begin, (size_t)(e->end - e->begin));
		/* The shape is checked against the offsets: the view lies in the Block. */
		unimem_view_init(&st->views[i], b, (uint64_t)(r + e->at - bptr), e->dtype,
				 e->ndim, e->shape);
	}
	return 0;
}

int unimem_safetensors_load(unimem_safetensors **out, unimem_tape *t, const char *path,
			    size_t align, unsigned flags)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!t || !path || (align & (align - 1)) != 0 ||
	    (flags & ~(unsigned)(UNIMEM_READ_BUFFERED | UNIMEM_READ_DIRECT)) ||
	    ((flags & UNIMEM_READ_BUFFERED) && (flags & UNIMEM_READ_DIRECT)))
		return -EINVAL;
	int fd = umi_open_regular(path);
	if (fd < 0)
		return fd;
	int err = 0;
	unsigned char *hdr = NULL;
	struct entry *entries = NULL;
	unimem_safetensors *st = NULL;
	struct stat sb;
	if (fstat(fd, &sb) != 0) {
		err = -errno;
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		err = -EINVAL;
		goto out;
	}
	uint64_t fsize = (uint64_t)sb.st_size;
	unsigned char lenbuf[8];
	if (fsize < 8) {
		err = umi_fail(BAD, "safetensors: a file of %llu bytes has no header length",
			       (unsigned long long)fsize);
		goto out;
	}
	err = umi_read_range(fd, lenbuf, 0, 8, UNIMEM_READ_BUFFERED);
	if (err)
		goto out;
	uint64_t hlen = 0;
	for (int i = 7; i >= 0; i--)
		hlen = hlen << 8 | lenbuf[i];
	if (hlen < 2 || hlen > HEADER_MAX || hlen > fsize - 8) {
		err = umi_fail(BAD, "safetensors: a header length of %llu bytes (the file holds "
			       "%llu after it; at most %llu)", (unsigned long long)hlen,
			       (unsigned long long)(fsize - 8), (unsigned long long)HEADER_MAX);
		goto out;
	}
	hdr = malloc((size_t)hlen);
	if (!hdr) {
		err = -ENOMEM;
		goto out;
	}
	err = umi_read_range(fd, hdr, 8, (size_t)hlen, UNIMEM_READ_BUFFERED);
	if (err)
		goto out;
	uint64_t data_at = 8 + hlen, data_len = fsize - data_at;
	err = umi_st_parse(&st, &entries, hdr, (size_t)hlen, data_len);
	if (err)
		goto out;

	err = place(st, entries, t, fd, data_at, data_len, align, flags);
	if (err)
		goto out;
	*out = st;
	st = NULL;
	goto out;
out:
	unimem_safetensors_close(st);
	free(entries);
	free(hdr);
	close(fd);
	return err;
}

size_t unimem_safetensors_count(const unimem_safetensors *st)
{
	return st ? st->count : 0;
}

const char *unimem_safetensors_name(const unimem_safetensors *st, size_t i)
{
	return st && i < st->count ? st->names[i] : NULL;
}

const unimem_view *unimem_safetensors_view(const unimem_safetensors *st, size_t i)
{
	return st && i < st->count ? &st->views[i] : NULL;
}

const unimem_view *unimem_safetensors_find(const unimem_safetensors *st, const char *name)
{
	if (!st || !name)
		return NULL;
	size_t lo = 0, hi = st->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(st->names[st->by_name[mid]], name);
		if (c == 0)
			return &st->views[st->by_name[mid]];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const char *unimem_safetensors_metadata(const unimem_safetensors *st, const char *key)
{
	if (!st || !key)
		return NULL;
	size_t lo = 0, hi = st->nmeta;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(st->meta[mid].key, key);
		if (c == 0)
			return st->meta[mid].value;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const char *unimem_safetensors_metadata_key(const unimem_safetensors *st, size_t i)
{
	return st && i < st->nmeta ? st->meta[i].key : NULL;
}

size_t unimem_safetensors_moved(const unimem_safetensors *st)
{
	return st ? st->moved : 0;
}
