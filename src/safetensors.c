/* SPDX-License-Identifier: MIT */
/* safetensors: a strict parser of the JSON header and a loader that places the data in a
 * Tape with one read (O_DIRECT where it can, see load.c) and hands out views.
 *
 * The parser reads only the N header bytes it was given, never recurses (the format
 * nests two objects deep at most), decodes strings into one arena of N bytes (a decoded
 * string with its NUL is never longer than its quoted form) and refuses anything the
 * format does not allow. */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* As huggingface/safetensors: a longer header is refused before it is read. */
#define HEADER_MAX ((uint64_t)100000000)

struct entry {
	const char *name;
	int dtype;
	int ndim;
	int64_t shape[UNIMEM_VIEW_MAX_DIMS];
	uint64_t begin, end;
};

struct meta {
	const char *key, *value;
};

struct unimem_safetensors {
	size_t count;
	const char **names;      /* data order */
	unimem_view *views;      /* data order */
	size_t *by_name;         /* indices, sorted by name */
	size_t nmeta;
	struct meta *meta;       /* sorted by key */
	size_t moved;
	char *arena;             /* every string */
};

struct parser {
	const unsigned char *p, *end;
	char *arena;
	size_t used;
	struct entry *entries;
	size_t n, cap;
	struct meta *meta;
	size_t nmeta, metacap;
	bool saw_metadata;
};

#define BAD (-EBADMSG)

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->end &&
	       (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

/* Skip whitespace, then consume `c`. */
static bool take_char(struct parser *ps, unsigned char c)
{
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == c) {
		ps->p++;
		return true;
	}
	return false;
}

static int hex4(struct parser *ps, unsigned *out)
{
	if (ps->end - ps->p < 4)
		return BAD;
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		unsigned char c = *ps->p++;
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return BAD;
	}
	*out = v;
	return 0;
}

static void put_utf8(char **w, unsigned cp)
{
	unsigned char *o = (unsigned char *)*w;
	if (cp < 0x80) {
		*o++ = (unsigned char)cp;
	} else if (cp < 0x800) {
		*o++ = (unsigned char)(0xc0 | (cp >> 6));
		*o++ = (unsigned char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*o++ = (unsigned char)(0xe0 | (cp >> 12));
		*o++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		*o++ = (unsigned char)(0x80 | (cp & 0x3f));
	} else {
		*o++ = (unsigned char)(0xf0 | (cp >> 18));
		*o++ = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		*o++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		*o++ = (unsigned char)(0x80 | (cp & 0x3f));
	}
	*w = (char *)o;
}

/* Length of the valid UTF-8 sequence at p (1 to 4), 0 when it is not one (overlong,
 * surrogate, past U+10FFFF, cut short). */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
	unsigned char c = p[0];
	size_t n;
	unsigned char lo = 0x80, hi = 0xbf;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if ((size_t)(end - p) < n)
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

/* A JSON string, decoded into the arena with a NUL. A string holding U+0000 is refused
 * (it could not be a C string). */
static int parse_string(struct parser *ps, const char **out, size_t *len)
{
	if (!take_char(ps, '"'))
		return BAD;
	char *start = ps->arena + ps->used, *w = start;
	for (;;) {
		if (ps->p >= ps->end)
			return BAD;
		unsigned char c = *ps->p;
		if (c == '"') {
			ps->p++;
			break;
		}
		if (c < 0x20)
			return BAD;
		if (c != '\\') {
			size_t n = utf8_len(ps->p, ps->end);
			if (!n)
				return BAD;
			memcpy(w, ps->p, n);
			w += n;
			ps->p += n;
			continue;
		}
		ps->p++;
		if (ps->p >= ps->end)
			return BAD;
		c = *ps->p++;
		unsigned cp;
		switch (c) {
		case '"': *w++ = '"'; break;
		case '\\': *w++ = '\\'; break;
		case '/': *w++ = '/'; break;
		case 'b': *w++ = '\b'; break;
		case 'f': *w++ = '\f'; break;
		case 'n': *w++ = '\n'; break;
		case 'r': *w++ = '\r'; break;
		case 't': *w++ = '\t'; break;
		case 'u':
			if (hex4(ps, &cp))
				return BAD;
			if (cp >= 0xdc00 && cp <= 0xdfff)
				return BAD; /* a low surrogate alone */
			if (cp >= 0xd800 && cp <= 0xdbff) {
				unsigned lo;
				if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u')
					return BAD;
				ps->p += 2;
				if (hex4(ps, &lo) || lo < 0xdc00 || lo > 0xdfff)
					return BAD;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			if (cp == 0)
				return BAD;
			/* \uXXXX is 6 bytes and yields at most 3; a pair is 12 and yields 4. */
			put_utf8(&w, cp);
			break;
		default:
			return BAD;
		}
	}
	*w++ = '\0';
	ps->used += (size_t)(w - start);
	*out = start;
	if (len)
		*len = (size_t)(w - start) - 1;
	return 0;
}

/* A non-negative JSON integer no greater than INT64_MAX: digits only, no sign, fraction
 * or exponent, no leading zero. */
static int parse_uint(struct parser *ps, uint64_t *out)
{
	skip_ws(ps);
	const unsigned char *s = ps->p;
	uint64_t v = 0;
	while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
		unsigned d = (unsigned)(*ps->p - '0');
		if (v > ((uint64_t)INT64_MAX - d) / 10)
			return BAD;
		v = v * 10 + d;
		ps->p++;
	}
	size_t n = (size_t)(ps->p - s);
	if (n == 0 || (n > 1 && s[0] == '0'))
		return BAD;
	/* "1.5", "1e3": the number does not end at the digits. */
	if (ps->p < ps->end && (*ps->p == '.' || *ps->p == 'e' || *ps->p == 'E'))
		return BAD;
	*out = v;
	return 0;
}

static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
	if (n < *cap)
		return 0;
	size_t c = *cap ? *cap * 2 : 16;
	if (c > SIZE_MAX / elem)
		return -ENOMEM;
	void *a = realloc(*arr, c * elem);
	if (!a)
		return -ENOMEM;
	*arr = a;
	*cap = c;
	return 0;
}

/* {"key": "value", ...} */
static int parse_metadata(struct parser *ps)
{
	if (ps->saw_metadata)
		return BAD;
	ps->saw_metadata = true;
	if (!take_char(ps, '{'))
		return BAD;
	if (take_char(ps, '}'))
		return 0;
	do {
		struct meta m;
		int err = parse_string(ps, &m.key, NULL);
		if (err || !take_char(ps, ':') || (err = parse_string(ps, &m.value, NULL)))
			return err ? err : BAD;
		err = grow((void **)&ps->meta, &ps->metacap, ps->nmeta, sizeof m);
		if (err)
			return err;
		ps->meta[ps->nmeta++] = m;
	} while (take_char(ps, ','));
	return take_char(ps, '}') ? 0 : BAD;
}

/* {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}, in any order */
static int parse_tensor(struct parser *ps, const char *name)
{
	struct entry e = {.name = name};
	bool have_dtype = false, have_shape = false, have_offsets = false;
	if (!take_char(ps, '{'))
		return BAD;
	do {
		const char *key;
		size_t klen;
		int err = parse_string(ps, &key, &klen);
		if (err || !take_char(ps, ':'))
			return BAD;
		if (strcmp(key, "dtype") == 0 && !have_dtype) {
			const char *dt;
			size_t dlen;
			if (parse_string(ps, &dt, &dlen))
				return BAD;
			e.dtype = umi_dtype_from_name(dt, dlen);
			if (!e.dtype)
				return BAD;
			have_dtype = true;
		} else if (strcmp(key, "shape") == 0 && !have_shape) {
			if (!take_char(ps, '['))
				return BAD;
			if (!take_char(ps, ']')) {
				do {
					uint64_t d;
					if (parse_uint(ps, &d))
						return BAD;
					if (e.ndim == UNIMEM_VIEW_MAX_DIMS)
						return -ENOTSUP;
					e.shape[e.ndim++] = (int64_t)d;
				} while (take_char(ps, ','));
				if (!take_char(ps, ']'))
					return BAD;
			}
			have_shape = true;
		} else if (strcmp(key, "data_offsets") == 0 && !have_offsets) {
			if (!take_char(ps, '[') || parse_uint(ps, &e.begin) || !take_char(ps, ',') ||
			    parse_uint(ps, &e.end) || !take_char(ps, ']'))
				return BAD;
			have_offsets = true;
		} else {
			return BAD; /* unknown or repeated field */
		}
		(void)klen;
	} while (take_char(ps, ','));
	if (!take_char(ps, '}') || !have_dtype || !have_shape || !have_offsets)
		return BAD;
	int err = grow((void **)&ps->entries, &ps->cap, ps->n, sizeof e);
	if (err)
		return err;
	ps->entries[ps->n++] = e;
	return 0;
}

static int parse_header(struct parser *ps)
{
	/* The format: the header starts with '{' itself (no leading whitespace). */
	if (ps->p >= ps->end || *ps->p != '{')
		return BAD;
	ps->p++;
	if (!take_char(ps, '}')) {
		do {
			const char *key;
			int err = parse_string(ps, &key, NULL);
			if (err || !take_char(ps, ':'))
				return BAD;
			if (strcmp(key, "__metadata__") == 0)
				err = parse_metadata(ps);
			else
				err = parse_tensor(ps, key);
			if (err)
				return err;
		} while (take_char(ps, ','));
		if (!take_char(ps, '}'))
			return BAD;
	}
	skip_ws(ps); /* the padding */
	return ps->p == ps->end ? 0 : BAD;
}

static int cmp_offsets(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return 0;
}

static int cmp_meta(const void *a, const void *b)
{
	return strcmp(((const struct meta *)a)->key, ((const struct meta *)b)->key);
}

/* Sorting indices by name without a global: pairs of (name, index). */
struct name_index {
	const char *name;
	size_t index;
};

static int cmp_name_index(const void *a, const void *b)
{
	return strcmp(((const struct name_index *)a)->name, ((const struct name_index *)b)->name);
}

/* Offsets agree with dtype and shape, and cover [0, data_len) exactly. Sorts entries
 * into data order. */
static int check_entries(struct entry *e, size_t n, uint64_t data_len)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t count = 1;
		for (int d = 0; d < e[i].ndim; d++)
			if (__builtin_mul_overflow(count, (uint64_t)e[i].shape[d], &count))
				return BAD;
		uint64_t bytes;
		if (__builtin_mul_overflow(count, (uint64_t)unimem_dtype_size(e[i].dtype), &bytes))
			return BAD;
		if (e[i].end < e[i].begin || e[i].end - e[i].begin != bytes)
			return BAD;
	}
	if (n > 1) /* qsort's base must not be NULL, even for 0 entries (UBSan) */
		qsort(e, n, sizeof *e, cmp_offsets);
	uint64_t at = 0;
	for (size_t i = 0; i < n; i++) {
		if (e[i].begin != at)
			return BAD; /* a gap or an overlap */
		at = e[i].end;
	}
	return at == data_len ? 0 : BAD;
}

static void free_parser(struct parser *ps)
{
	free(ps->entries);
	free(ps->meta);
}

void unimem_safetensors_close(unimem_safetensors *st)
{
	if (!st)
		return;
	free(st->names);
	free(st->views);
	free(st->by_name);
	free(st->meta);
	free(st->arena);
	free(st);
}

/* Build the result from the parsed header (entries in data order); takes the arena and
 * the metadata array from ps. */
static int build(unimem_safetensors **out, struct parser *ps, char *arena)
{
	unimem_safetensors *st = calloc(1, sizeof *st);
	if (!st)
		return -ENOMEM;
	st->arena = arena;
	st->count = ps->n;
	size_t n = ps->n ? ps->n : 1;
	st->names = calloc(n, sizeof *st->names);
	st->views = calloc(n, sizeof *st->views);
	st->by_name = calloc(n, sizeof *st->by_name);
	struct name_index *ni = calloc(n, sizeof *ni);
	if (!st->names || !st->views || !st->by_name || !ni) {
		free(ni);
		st->arena = NULL;
		unimem_safetensors_close(st);
		return -ENOMEM;
	}
	for (size_t i = 0; i < ps->n; i++) {
		st->names[i] = ps->entries[i].name;
		ni[i].name = ps->entries[i].name;
		ni[i].index = i;
	}
	qsort(ni, ps->n, sizeof *ni, cmp_name_index);
	int err = 0;
	for (size_t i = 0; i < ps->n; i++) {
		if (i > 0 && strcmp(ni[i - 1].name, ni[i].name) == 0)
			err = BAD; /* the same tensor name twice */
		st->by_name[i] = ni[i].index;
	}
	free(ni);
	st->meta = ps->meta;
	st->nmeta = ps->nmeta;
	ps->meta = NULL;
	if (!err && st->nmeta) {
		qsort(st->meta, st->nmeta, sizeof *st->meta, cmp_meta);
		for (size_t i = 1; i < st->nmeta; i++)
			if (strcmp(st->meta[i - 1].key, st->meta[i].key) == 0)
				err = BAD;
	}
	if (err) {
		st->arena = NULL;
		unimem_safetensors_close(st);
		return err;
	}
	*out = st;
	return 0;
}

/* Parse a header of n bytes (not NUL-terminated) that announces data_len bytes of data.
 * On success *out has names, metadata and entries (views not yet placed). */
static int parse(unimem_safetensors **out, struct entry **entries, const unsigned char *hdr,
		 size_t n, uint64_t data_len)
{
	char *arena = malloc(n ? n : 1);
	if (!arena)
		return -ENOMEM;
	struct parser ps = {.p = hdr, .end = hdr + n, .arena = arena};
	int err = parse_header(&ps);
	if (!err)
		err = check_entries(ps.entries, ps.n, data_len);
	if (!err)
		err = build(out, &ps, arena);
	if (err) {
		free(arena);
		free_parser(&ps);
		return err;
	}
	*entries = ps.entries;
	free(ps.meta);
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
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
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
		err = BAD;
		goto out;
	}
	err = umi_read_range(fd, lenbuf, 0, 8, UNIMEM_READ_BUFFERED);
	if (err)
		goto out;
	uint64_t hlen = 0;
	for (int i = 7; i >= 0; i--)
		hlen = hlen << 8 | lenbuf[i];
	if (hlen < 2 || hlen > HEADER_MAX || hlen > fsize - 8) {
		err = BAD;
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
	err = parse(&st, &entries, hdr, (size_t)hlen, data_len);
	if (err)
		goto out;

	/* One read of the data, from the 4 KiB boundary below it. */
	unsigned char *base = t->base, *room = NULL, *data = base;
	uint64_t from = data_at & ~(uint64_t)4095;
	size_t room_len = 0;
	uint64_t our_end = 0;
	if (data_len) {
		if (fsize - from > SIZE_MAX) {
			err = -ENOSPC;
			goto out;
		}
		room_len = (size_t)(fsize - from);
		room = umi_tape_take_room(t, room_len);
		if (!room) {
			err = -ENOSPC;
			goto out;
		}
		our_end = (uint64_t)(room - base) + room_len;
		err = umi_read_range(fd, room, from, room_len, flags);
		if (err)
			goto give_back;
		data = room + (data_at - from);
	}
	const unimem_block *b = t->block;
	unsigned char *bptr = unimem_block_ptr(b);
	for (size_t i = 0; i < st->count; i++) {
		struct entry *e = &entries[i];
		size_t esize = unimem_dtype_size(e->dtype);
		size_t a = align > esize ? align : esize;
		size_t bytes = (size_t)(e->end - e->begin);
		unsigned char *at = data + e->begin;
		if (bytes == 0) {
			/* No element to align: any page-aligned address inside will do. */
			at = room ? room : base;
		} else if ((uintptr_t)at & (a - 1)) {
			/* Moved to a place of its own; the room is taken after the data. */
			unsigned char *dst = unimem_tape_take(t, bytes, a);
			if (!dst) {
				err = -ENOSPC;
				goto give_back;
			}
			memcpy(dst, at, bytes);
			our_end = (uint64_t)(dst - base) + bytes;
			at = dst;
			st->moved++;
		}
		/* The shape is checked against the offsets: the view lies in the Block. */
		unimem_view_init(&st->views[i], b, (uint64_t)(at - bptr), e->dtype, e->ndim,
				 e->shape);
	}
	*out = st;
	st = NULL;
	goto out;
give_back:
	if (room)
		umi_tape_give_back(t, room, (size_t)(our_end - (uint64_t)(room - base)));
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

/* Parse only, for the streaming loader (weights.c; issue 16): the header of fd, checked as
 * unimem_safetensors_load() checks it, with the tensors' offsets handed out instead of
 * views placed in a Tape. Kept apart from the loader above on purpose. */
int umi_safetensors_parse_fd(int fd, uint64_t fsize, unimem_safetensors **out,
			     struct umi_st_tensor **tensors, uint64_t *data_at)
{
	*out = NULL;
	*tensors = NULL;
	unsigned char lenbuf[8];
	if (fsize < 8)
		return BAD;
	int err = umi_read_range(fd, lenbuf, 0, 8, UNIMEM_READ_BUFFERED);
	if (err)
		return err;
	uint64_t hlen = 0;
	for (int i = 7; i >= 0; i--)
		hlen = hlen << 8 | lenbuf[i];
	if (hlen < 2 || hlen > HEADER_MAX || hlen > fsize - 8)
		return BAD;
	unsigned char *hdr = malloc((size_t)hlen);
	if (!hdr)
		return -ENOMEM;
	err = umi_read_range(fd, hdr, 8, (size_t)hlen, UNIMEM_READ_BUFFERED);
	struct entry *entries = NULL;
	unimem_safetensors *st = NULL;
	if (!err)
		err = parse(&st, &entries, hdr, (size_t)hlen, fsize - 8 - hlen);
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
