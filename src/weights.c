/* SPDX-License-Identifier: MIT */
/* Streaming weights (issue 16): the checkpoint (one safetensors file or the shards of an
 * index), its layout in one destination buffer, and the accessors. The upload itself is
 * in weights_stream.c. */
#define _GNU_SOURCE
#include "weights_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define KNOWN_FLAGS (UNIMEM_READ_BUFFERED | UNIMEM_READ_DIRECT)

void unimem_weights_close(unimem_weights *w)
{
	if (!w)
		return;
	if (w->device == UNIMEM_WEIGHTS_CPU) {
		if (w->owns && w->base)
			munmap(w->base, w->bytes);
	} else {
		umi_weights_free_device(w); /* frees only what unimem allocated */
	}
	for (size_t i = 0; i < w->nshards; i++) {
		if (w->shards[i].fd >= 0)
			close(w->shards[i].fd);
		unimem_safetensors_close(w->shards[i].st);
		free(w->shards[i].t);
	}
	free(w->shards);
	free(w->t);
	free(w->by_name);
	free(w);
}

#define HEADER_MAX ((uint64_t)100000000) /* as safetensors.c */

/* The header of the open file fd, parsed as unimem_safetensors_load() parses it
 * (umi_st_parse), with the tensors' offsets handed out instead of views placed. */
static int parse_fd(int fd, uint64_t fsize, unimem_safetensors **out,
		    struct umi_st_tensor **tensors, uint64_t *data_at)
{
	*out = NULL;
	*tensors = NULL;
	unsigned char lenbuf[8];
	if (fsize < 8)
		return umi_fail(-EBADMSG, "safetensors: the file is %llu bytes, under 8",
				(unsigned long long)fsize);
	int err = umi_read_range(fd, lenbuf, 0, 8, UNIMEM_READ_BUFFERED);
	if (err)
		return err;
	uint64_t hlen = 0;
	for (int i = 7; i >= 0; i--)
		hlen = hlen << 8 | lenbuf[i];
	if (hlen < 2 || hlen > HEADER_MAX || hlen > fsize - 8)
		return umi_fail(-EBADMSG, "safetensors: a header length of %llu in a file of %llu",
				(unsigned long long)hlen, (unsigned long long)fsize);
	unsigned char *hdr = malloc((size_t)hlen);
	if (!hdr)
		return -ENOMEM;
	err = umi_read_range(fd, hdr, 8, (size_t)hlen, UNIMEM_READ_BUFFERED);
	struct entry *entries = NULL;
	unimem_safetensors *st = NULL;
	if (!err)
		err = umi_st_parse(&st, &entries, hdr, (size_t)hlen, fsize - 8 - hlen);
	free(hdr);
	if (err)
		return err;
	struct umi_st_tensor *t = calloc(st->count ? st->count : 1, sizeof *t);
	if (!t) {
		free(entries);
		unimem_safetensors_close(st);
		return -ENOMEM;
	}
	for (size_t i = 0; i < st->count; i++) {
		t[i].name = entries[i].name;
		t[i].dtype = entries[i].dtype;
		t[i].ndim = entries[i].ndim;
		memcpy(t[i].shape, entries[i].shape, sizeof t[i].shape);
		t[i].begin = entries[i].begin;
		t[i].end = entries[i].end;
	}
	free(entries);
	*out = st;
	*tensors = t;
	*data_at = 8 + hlen;
	return 0;
}

/* Open and parse one shard. */
static int open_shard(struct w_shard *s, const char *path)
{
	s->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s->fd < 0)
		return -errno;
	struct stat sb;
	if (fstat(s->fd, &sb) != 0)
		return -errno;
	if (!S_ISREG(sb.st_mode))
		return -EINVAL;
	s->size = (uint64_t)sb.st_size;
	int err = parse_fd(s->fd, s->size, &s->st, &s->t, &s->data_at);
	if (!err)
		s->count = unimem_safetensors_count(s->st);
	return err;
}

struct name_index {
	const char *name;
	size_t index;
};

static int cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct name_index *)a)->name, ((const struct name_index *)b)->name);
}

/* w->by_name: the indices sorted by name (qsort_r differs between Linux and macOS). */
static int sort_names(unimem_weights *w)
{
	size_t n = w->count;
	struct name_index *ni = calloc(n ? n : 1, sizeof *ni);
	if (!ni)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		ni[i] = (struct name_index){ w->t[i].name, i };
	if (n > 1)
		qsort(ni, n, sizeof *ni, cmp_name);
	int err = 0;
	for (size_t i = 0; i < n; i++) {
		w->by_name[i] = ni[i].index;
		if (i && strcmp(ni[i - 1].name, ni[i].name) == 0)
			err = -EBADMSG; /* one name in two shards */
	}
	free(ni);
	return err;
}

/* Lay the tensors out one after the other, UNIMEM_WEIGHTS_ALIGN apart, and index them. */
static int lay_out(unimem_weights *w)
{
	size_t n = 0;
	for (size_t s = 0; s < w->nshards; s++) {
		w->shards[s].first = n;
		n += w->shards[s].count;
	}
	w->count = n;
	w->t = calloc(n ? n : 1, sizeof *w->t);
	w->by_name = calloc(n ? n : 1, sizeof *w->by_name);
	if (!w->t || !w->by_name)
		return -ENOMEM;
	size_t at = 0, k = 0;
	for (size_t s = 0; s < w->nshards; s++) {
		const struct w_shard *sh = &w->shards[s];
		for (size_t i = 0; i < sh->count; i++, k++) {
			const struct umi_st_tensor *e = &sh->t[i];
			struct w_tensor *t = &w->t[k];
			t->name = e->name;
			t->dtype = e->dtype;
			t->ndim = e->ndim;
			t->shape = e->shape;
			t->shard = s;
			t->file_at = sh->data_at + e->begin;
			t->nbytes = e->end - e->begin;
			if (t->nbytes > SIZE_MAX - at - UNIMEM_WEIGHTS_ALIGN)
				return -ENOMEM;
			t->offset = at;
			at = umi_round_up(at + (size_t)t->nbytes, UNIMEM_WEIGHTS_ALIGN);
		}
	}
	w->bytes = at;
	return sort_names(w);
}

/* Whether path names a directory; then *file is the checkpoint inside it (malloc). */
static int resolve_dir(const char *path, char **file)
{
	*file = NULL;
	struct stat sb;
	if (stat(path, &sb) != 0)
		return -errno;
	if (!S_ISDIR(sb.st_mode))
		return 0;
	static const char *names[] = { "model.safetensors.index.json", "model.safetensors" };
	for (size_t i = 0; i < 2; i++) {
		char *p;
		if (asprintf(&p, "%s/%s", path, names[i]) < 0)
			return -ENOMEM;
		if (access(p, F_OK) == 0) {
			*file = p;
			return 0;
		}
		free(p);
	}
	return -ENOENT;
}

static bool is_index(const char *path)
{
	size_t n = strlen(path);
	return n >= 5 && strcmp(path + n - 5, ".json") == 0;
}

/* Every name of the weight map is in the shard it names, and nothing else is there. */
static int check_map(const unimem_weights *w, const struct w_index *ix)
{
	if (ix->n != w->count)
		return -EBADMSG;
	for (size_t i = 0; i < ix->n; i++) {
		long k = unimem_weights_find(w, ix->names[i]);
		if (k < 0 || w->t[k].shard != ix->shard_of[i])
			return -EBADMSG;
	}
	return 0;
}

static int open_all(unimem_weights *w, const char *path)
{
	if (!is_index(path)) {
		w->shards = calloc(1, sizeof *w->shards);
		if (!w->shards)
			return -ENOMEM;
		w->shards[0].fd = -1;
		w->nshards = 1;
		int err = open_shard(&w->shards[0], path);
		return err ? err : lay_out(w);
	}
	struct w_index ix;
	int err = umi_weights_index_parse(path, &ix);
	if (err)
		return err;
	w->shards = calloc(ix.nfiles ? ix.nfiles : 1, sizeof *w->shards);
	if (!w->shards)
		err = -ENOMEM;
	for (size_t i = 0; !err && i < ix.nfiles; i++)
		w->shards[i].fd = -1;
	for (size_t i = 0; !err && i < ix.nfiles; i++) {
		w->nshards = i + 1;
		err = open_shard(&w->shards[i], ix.files[i]);
	}
	if (!err)
		err = lay_out(w);
	if (!err)
		err = check_map(w, &ix);
	umi_weights_index_free(&ix);
	return err;
}

int unimem_weights_open(unimem_weights **out, const char *path, unsigned flags)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!path || (flags & ~(unsigned)KNOWN_FLAGS) || (flags & KNOWN_FLAGS) == KNOWN_FLAGS)
		return -EINVAL;
	char *inside;
	int err = resolve_dir(path, &inside);
	if (err)
		return err;
	unimem_weights *w = calloc(1, sizeof *w);
	if (!w) {
		free(inside);
		return -ENOMEM;
	}
	w->flags = flags;
	w->device = -2;
	w->ctx_device = -1;
	err = open_all(w, inside ? inside : path);
	free(inside);
	if (err) {
		unimem_weights_close(w);
		return err;
	}
	*out = w;
	return 0;
}

int unimem_weights_upload(unimem_weights *w, int device, void *buf, size_t cap)
{
	if (!w)
		return -EINVAL;
	if (w->device != -2)
		return -EALREADY;
	if (device < UNIMEM_WEIGHTS_CPU)
		return -ENODEV;
	if (buf && ((uintptr_t)buf & 63))
		return -EINVAL;
	if (buf && cap < w->bytes)
		return -ENOSPC;
	unsigned char *base = buf;
	if (!buf && device == UNIMEM_WEIGHTS_CPU && w->bytes) {
		base = mmap(NULL, w->bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			    -1, 0);
		if (base == MAP_FAILED)
			return -ENOMEM;
		w->owns = true;
	}
	/* The GPU path allocates (when buf is NULL) and checks the buffer itself. */
	int err = umi_weights_stream(w, device, base);
	if (err) {
		if (w->owns && device == UNIMEM_WEIGHTS_CPU)
			munmap(base, w->bytes);
		w->owns = false;
		return err;
	}
	if (!w->base)
		w->base = base; /* the stream set it where it allocated device memory */
	w->device = device;
	for (size_t i = 0; i < w->nshards; i++) {
		close(w->shards[i].fd);
		w->shards[i].fd = -1;
	}
	return 0;
}

int unimem_weights_load(unimem_weights **out, const char *path, int device, void *buf,
			size_t cap, unsigned flags)
{
	if (out)
		*out = NULL;
	unimem_weights *w = NULL;
	int err = unimem_weights_open(out ? &w : NULL, path, flags);
	if (!err) {
		err = unimem_weights_upload(w, device, buf, cap);
		if (err)
			unimem_weights_close(w);
		else
			*out = w;
	}
	return err;
}

size_t unimem_weights_bytes(const unimem_weights *w)
{
	return w ? w->bytes : 0;
}

size_t unimem_weights_count(const unimem_weights *w)
{
	return w ? w->count : 0;
}

static const struct w_tensor *at(const unimem_weights *w, size_t i)
{
	return w && i < w->count ? &w->t[i] : NULL;
}

const char *unimem_weights_name(const unimem_weights *w, size_t i)
{
	return at(w, i) ? w->t[i].name : NULL;
}

long unimem_weights_find(const unimem_weights *w, const char *name)
{
	if (!w || !name)
		return -1;
	size_t lo = 0, hi = w->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(w->t[w->by_name[mid]].name, name);
		if (c == 0)
			return (long)w->by_name[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

int unimem_weights_dtype(const unimem_weights *w, size_t i)
{
	return at(w, i) ? w->t[i].dtype : 0;
}

int unimem_weights_ndim(const unimem_weights *w, size_t i)
{
	return at(w, i) ? w->t[i].ndim : -1;
}

const int64_t *unimem_weights_shape(const unimem_weights *w, size_t i)
{
	return at(w, i) ? w->t[i].shape : NULL;
}

size_t unimem_weights_nbytes(const unimem_weights *w, size_t i)
{
	return at(w, i) ? (size_t)w->t[i].nbytes : 0;
}

size_t unimem_weights_offset(const unimem_weights *w, size_t i)
{
	return at(w, i) ? w->t[i].offset : 0;
}

void *unimem_weights_ptr(const unimem_weights *w, size_t i)
{
	if (!at(w, i) || w->device == -2 || !w->base)
		return NULL;
	return w->base + w->t[i].offset;
}

int unimem_weights_device(const unimem_weights *w)
{
	return w ? w->device : -2;
}

const char *unimem_weights_metadata(const unimem_weights *w, const char *key)
{
	return w && w->nshards ? unimem_safetensors_metadata(w->shards[0].st, key) : NULL;
}

const char *unimem_weights_metadata_key(const unimem_weights *w, size_t i)
{
	return w && w->nshards ? unimem_safetensors_metadata_key(w->shards[0].st, i) : NULL;
}

size_t unimem_weights_files(const unimem_weights *w)
{
	return w ? w->nshards : 0;
}

size_t unimem_weights_staging(const unimem_weights *w)
{
	return w ? w->staging : 0;
}
