/* SPDX-License-Identifier: MIT */
/* model.safetensors.index.json (issue 16): {"metadata": {...}, "weight_map": {"tensor":
 * "shard file", ...}}. A strict JSON reader of its own (any value is skipped outside the
 * weight map, nesting at most 64 deep), that never reads past the bytes it was given.
 * Shard names are file names beside the index: absolute paths and ".." are refused. */
#define _GNU_SOURCE
#include "weights_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define INDEX_MAX ((uint64_t)100000000)
#define DEPTH_MAX 64
#define BAD (-EBADMSG)

struct rd {
	const char *p, *end;
};

static void ws(struct rd *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
		r->p++;
}

static bool take(struct rd *r, char c)
{
	ws(r);
	if (r->p < r->end && *r->p == c) {
		r->p++;
		return true;
	}
	return false;
}

static int hex4(struct rd *r, unsigned *v)
{
	if (r->end - r->p < 4)
		return BAD;
	*v = 0;
	for (int i = 0; i < 4; i++) {
		char c = *r->p++;
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
			c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (d < 0)
			return BAD;
		*v = *v << 4 | (unsigned)d;
	}
	return 0;
}

/* A string, decoded into a malloc'd C string when out is not NULL. Control characters,
 * bad escapes, lone surrogates and U+0000 are refused; bytes >= 0x80 are copied as they
 * are (the names are compared with the shards' own, which are checked UTF-8). */
static int string(struct rd *r, char **out)
{
	if (!take(r, '"'))
		return BAD;
	char *o = out ? malloc((size_t)(r->end - r->p) + 1) : NULL, *w = o;
	if (out && !o)
		return -ENOMEM;
	int err = BAD;
	while (r->p < r->end) {
		unsigned char c = (unsigned char)*r->p++;
		if (c == '"') {
			err = 0;
			break;
		}
		if (c < 0x20)
			break;
		if (c != '\\') {
			if (w)
				*w++ = (char)c;
			continue;
		}
		if (r->p >= r->end)
			break;
		c = (unsigned char)*r->p++;
		const char *esc = strchr("\"\\/bfnrt", c);
		if (esc && c) {
			if (w)
				*w++ = "\"\\/\b\f\n\r\t"[esc - "\"\\/bfnrt"];
			continue;
		}
		unsigned cp, lo;
		if (c != 'u' || hex4(r, &cp) || cp == 0 || (cp >= 0xdc00 && cp <= 0xdfff))
			break;
		if (cp >= 0xd800 && cp <= 0xdbff) {
			if (r->end - r->p < 2 || r->p[0] != '\\' || r->p[1] != 'u')
				break;
			r->p += 2;
			if (hex4(r, &lo) || lo < 0xdc00 || lo > 0xdfff)
				break;
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
		}
		if (w) {
			if (cp < 0x80) {
				*w++ = (char)cp;
			} else if (cp < 0x800) {
				*w++ = (char)(0xc0 | cp >> 6);
				*w++ = (char)(0x80 | (cp & 0x3f));
			} else if (cp < 0x10000) {
				*w++ = (char)(0xe0 | cp >> 12);
				*w++ = (char)(0x80 | (cp >> 6 & 0x3f));
				*w++ = (char)(0x80 | (cp & 0x3f));
			} else {
				*w++ = (char)(0xf0 | cp >> 18);
				*w++ = (char)(0x80 | (cp >> 12 & 0x3f));
				*w++ = (char)(0x80 | (cp >> 6 & 0x3f));
				*w++ = (char)(0x80 | (cp & 0x3f));
			}
		}
	}
	if (err || !out) {
		free(o);
		return err;
	}
	*w = '\0';
	*out = o;
	return 0;
}

static int value(struct rd *r, int depth);

/* Any JSON value, skipped. */
static int value(struct rd *r, int depth)
{
	if (depth > DEPTH_MAX)
		return BAD;
	ws(r);
	if (r->p >= r->end)
		return BAD;
	char c = *r->p;
	if (c == '"')
		return string(r, NULL);
	if (c == '{' || c == '[') {
		char close = c == '{' ? '}' : ']';
		r->p++;
		if (take(r, close))
			return 0;
		do {
			if (c == '{' && (string(r, NULL) || !take(r, ':')))
				return BAD;
			if (value(r, depth + 1))
				return BAD;
		} while (take(r, ','));
		return take(r, close) ? 0 : BAD;
	}
	static const char *words[] = { "true", "false", "null" };
	for (size_t i = 0; i < 3; i++) {
		size_t n = strlen(words[i]);
		if ((size_t)(r->end - r->p) >= n && memcmp(r->p, words[i], n) == 0) {
			r->p += n;
			return 0;
		}
	}
	/* A number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
	const char *s = r->p;
	if (r->p < r->end && *r->p == '-')
		r->p++;
	const char *d = r->p;
	while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
		r->p++;
	if (r->p == d || (*d == '0' && r->p - d > 1))
		return BAD;
	if (r->p < r->end && *r->p == '.') {
		d = ++r->p;
		while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
			r->p++;
		if (r->p == d)
			return BAD;
	}
	if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
		r->p++;
		if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
			r->p++;
		d = r->p;
		while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
			r->p++;
		if (r->p == d)
			return BAD;
	}
	return r->p > s ? 0 : BAD;
}

static bool safe_name(const char *f)
{
	if (!*f || f[0] == '/')
		return false;
	for (const char *p = f; *p;) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if ((n == 2 && p[0] == '.' && p[1] == '.') || n == 0)
			return false;
		p += n + (e != NULL);
	}
	return true;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The weight map: names and their files (files[i] taken into ix->files). */
static int weight_map(struct rd *r, struct w_index *ix, char ***file_of)
{
	if (!take(r, '{'))
		return BAD;
	if (take(r, '}'))
		return 0;
	size_t cap = 0;
	do {
		if (ix->n == cap) {
			cap = cap ? 2 * cap : 256;
			char **a = realloc(ix->names, cap * sizeof *a), **b = a ? realloc(*file_of, cap * sizeof *b) : NULL;
			if (a)
				ix->names = a;
			if (b)
				*file_of = b;
			if (!a || !b)
				return -ENOMEM;
		}
		char *name = NULL, *file = NULL;
		int err = string(r, &name);
		if (!err && !take(r, ':'))
			err = BAD;
		if (!err)
			err = string(r, &file);
		if (!err && !safe_name(file))
			err = BAD;
		if (err) {
			free(name);
			free(file);
			return err;
		}
		ix->names[ix->n] = name;
		(*file_of)[ix->n++] = file;
	} while (take(r, ','));
	return take(r, '}') ? 0 : BAD;
}

void umi_weights_index_free(struct w_index *ix)
{
	for (size_t i = 0; i < ix->nfiles; i++)
		free(ix->files[i]);
	for (size_t i = 0; i < ix->n; i++)
		free(ix->names[i]);
	free(ix->files);
	free(ix->names);
	free(ix->shard_of);
	memset(ix, 0, sizeof *ix);
}

static int read_all(const char *path, char **buf, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat sb;
	int err = fstat(fd, &sb) != 0 ? -errno : !S_ISREG(sb.st_mode) ? -EINVAL :
		  (uint64_t)sb.st_size > INDEX_MAX ? BAD : 0;
	*buf = err ? NULL : malloc((size_t)sb.st_size + 1);
	if (!err && !*buf)
		err = -ENOMEM;
	if (!err) {
		*len = (size_t)sb.st_size;
		err = umi_read_range(fd, (unsigned char *)*buf, 0, *len, UNIMEM_READ_BUFFERED);
	}
	close(fd);
	if (err) {
		free(*buf);
		*buf = NULL;
	}
	return err;
}

/* Directory of the index, with its slash ("" for a bare name). */
static size_t dir_len(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? (size_t)(s - path) + 1 : 0;
}

int umi_weights_index_parse(const char *path, struct w_index *ix)
{
	memset(ix, 0, sizeof *ix);
	char *text = NULL, **file_of = NULL;
	size_t len = 0;
	int err = read_all(path, &text, &len);
	if (err)
		return err;
	struct rd r = { text, text + len };
	bool have_map = false;
	if (!take(&r, '{'))
		err = BAD;
	if (!err && !take(&r, '}')) {
		do {
			char *key = NULL;
			err = string(&r, &key);
			if (!err && !take(&r, ':'))
				err = BAD;
			if (!err && strcmp(key, "weight_map") == 0 && !have_map) {
				have_map = true;
				err = weight_map(&r, ix, &file_of);
			} else if (!err) {
				err = strcmp(key, "weight_map") == 0 ? BAD : value(&r, 1);
			}
			free(key);
		} while (!err && take(&r, ','));
		if (!err && !take(&r, '}'))
			err = BAD;
	}
	ws(&r);
	if (!err && (r.p != r.end || !have_map))
		err = BAD;
	free(text);
	/* The files: sorted, each once; each name's shard by binary search. */
	char **sorted = NULL;
	if (!err && ix->n) {
		sorted = malloc(ix->n * sizeof *sorted);
		ix->shard_of = malloc(ix->n * sizeof *ix->shard_of);
		ix->files = calloc(ix->n, sizeof *ix->files);
		if (!sorted || !ix->shard_of || !ix->files)
			err = -ENOMEM;
	}
	if (!err && ix->n) {
		memcpy(sorted, file_of, ix->n * sizeof *sorted);
		qsort(sorted, ix->n, sizeof *sorted, cmp_str);
		size_t d = dir_len(path);
		for (size_t i = 0; !err && i < ix->n; i++) {
			if (i && strcmp(sorted[i], sorted[i - 1]) == 0)
				continue;
			char *full = malloc(d + strlen(sorted[i]) + 1);
			if (!full) {
				err = -ENOMEM;
				break;
			}
			memcpy(full, path, d);
			strcpy(full + d, sorted[i]);
			ix->files[ix->nfiles] = full;
			sorted[ix->nfiles++] = sorted[i];
		}
		for (size_t i = 0; !err && i < ix->n; i++) {
			char **hit = bsearch(&file_of[i], sorted, ix->nfiles, sizeof *sorted, cmp_str);
			ix->shard_of[i] = (size_t)(hit - sorted);
		}
	}
	free(sorted);
	if (file_of)
		for (size_t i = 0; i < ix->n; i++)
			free(file_of[i]);
	free(file_of);
	if (err)
		umi_weights_index_free(ix);
	return err;
}
