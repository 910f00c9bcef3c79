/* SPDX-License-Identifier: MIT */
/* safetensors: the header's schema, over the strict JSON lexer of json.c. The parser reads
 * only the N header bytes it was given, never recurses (the format nests two objects deep
 * at most), decodes strings into one arena of N bytes (a decoded string with its NUL is
 * never longer than its quoted form) and refuses anything the format does not allow,
 * saying what (umi_fail). */
#include "json.h"
#include "safetensors_pvt.h"
#include "view_pvt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct parser {
	struct umi_json js;      /* the header's bytes and the string arena */
	struct entry *entries;
	size_t n, cap;
	struct meta *meta;
	size_t nmeta, metacap;
	bool saw_metadata;
};

#define BAD (-EBADMSG)

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

/* -EBADMSG for a header that is not the format's JSON where the parser stands. */
static int syntax(const struct parser *ps, const char *expected)
{
	return umi_fail(-EBADMSG, "safetensors header: %s expected at byte %zu", expected,
			(size_t)(ps->js.p - ps->js.start));
}

/* {"key": "value", ...} */
static int parse_metadata(struct parser *ps)
{
	if (ps->saw_metadata)
		return umi_fail(BAD, "safetensors header: __metadata__ twice");
	ps->saw_metadata = true;
	if (!umi_json_take(&ps->js, '{'))
		return syntax(ps, "'{' (the __metadata__ object)");
	if (umi_json_take(&ps->js, '}'))
		return 0;
	do {
		struct meta m;
		int err = umi_json_string(&ps->js, &m.key, NULL);
		if (err)
			return err;
		if (!umi_json_take(&ps->js, ':'))
			return syntax(ps, "':'");
		err = umi_json_string(&ps->js, &m.value, NULL);
		if (err)
			return err; /* a value that is not a string, too */
		err = grow((void **)&ps->meta, &ps->metacap, ps->nmeta, sizeof m);
		if (err)
			return err;
		ps->meta[ps->nmeta++] = m;
	} while (umi_json_take(&ps->js, ','));
	return umi_json_take(&ps->js, '}') ? 0 : syntax(ps, "',' or '}'");
}

/* {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}, in any order */
static int parse_tensor(struct parser *ps, const char *name)
{
	struct entry e = {.name = name};
	bool have_dtype = false, have_shape = false, have_offsets = false;
	if (!umi_json_take(&ps->js, '{'))
		return syntax(ps, "'{' (a tensor's object)");
	do {
		const char *key;
		int err = umi_json_string(&ps->js, &key, NULL);
		if (err)
			return err;
		if (!umi_json_take(&ps->js, ':'))
			return syntax(ps, "':'");
		if (strcmp(key, "dtype") == 0 && !have_dtype) {
			const char *dt;
			size_t dlen;
			if ((err = umi_json_string(&ps->js, &dt, &dlen)))
				return err;
			e.dtype = umi_dtype_from_name(dt, dlen);
			if (!e.dtype)
				return umi_fail(BAD, "safetensors header: tensor \"%.64s\": unknown dtype "
					       "\"%.16s\"", name, dt);
			have_dtype = true;
		} else if (strcmp(key, "shape") == 0 && !have_shape) {
			if (!umi_json_take(&ps->js, '['))
				return syntax(ps, "'[' (a shape)");
			if (!umi_json_take(&ps->js, ']')) {
				do {
					uint64_t d;
					if ((err = umi_json_uint(&ps->js, &d)))
						return err;
					if (e.ndim == UNIMEM_VIEW_MAX_DIMS)
						return -ENOTSUP;
					e.shape[e.ndim++] = (int64_t)d;
				} while (umi_json_take(&ps->js, ','));
				if (!umi_json_take(&ps->js, ']'))
					return syntax(ps, "',' or ']'");
			}
			have_shape = true;
		} else if (strcmp(key, "data_offsets") == 0 && !have_offsets) {
			if (!umi_json_take(&ps->js, '['))
				return syntax(ps, "'[' (data_offsets)");
			if ((err = umi_json_uint(&ps->js, &e.begin)))
				return err;
			if (!umi_json_take(&ps->js, ','))
				return syntax(ps, "',' (data_offsets has two numbers)");
			if ((err = umi_json_uint(&ps->js, &e.end)))
				return err;
			if (!umi_json_take(&ps->js, ']'))
				return syntax(ps, "']' (data_offsets has two numbers)");
			have_offsets = true;
		} else {
			return umi_fail(BAD, "safetensors header: tensor \"%.64s\": unknown or repeated "
				       "field \"%.32s\"", name, key);
		}
	} while (umi_json_take(&ps->js, ','));
	if (!umi_json_take(&ps->js, '}'))
		return syntax(ps, "',' or '}'");
	if (!have_dtype || !have_shape || !have_offsets)
		return umi_fail(BAD, "safetensors header: tensor \"%.64s\" lacks %s", name,
				!have_dtype ? "dtype" : !have_shape ? "shape" : "data_offsets");
	int err = grow((void **)&ps->entries, &ps->cap, ps->n, sizeof e);
	if (err)
		return err;
	ps->entries[ps->n++] = e;
	return 0;
}

static int parse_header(struct parser *ps)
{
	/* The format: the header starts with '{' itself (no leading whitespace). */
	if (ps->js.p >= ps->js.end || *ps->js.p != '{')
		return syntax(ps, "'{' as the first byte");
	ps->js.p++;
	if (!umi_json_take(&ps->js, '}')) {
		do {
			const char *key;
			int err = umi_json_string(&ps->js, &key, NULL);
			if (err)
				return err;
			if (!umi_json_take(&ps->js, ':'))
				return syntax(ps, "':'");
			if (strcmp(key, "__metadata__") == 0)
				err = parse_metadata(ps);
			else
				err = parse_tensor(ps, key);
			if (err)
				return err;
		} while (umi_json_take(&ps->js, ','));
		if (!umi_json_take(&ps->js, '}'))
			return syntax(ps, "',' or '}'");
	}
	umi_json_skip_ws(&ps->js); /* the padding */
	return ps->js.p == ps->js.end ? 0 : syntax(ps, "the end (only spaces may pad it)");
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
				return umi_fail(BAD, "safetensors: tensor \"%.64s\": its shape "
						"overflows", e[i].name);
		uint64_t bytes;
		if (__builtin_mul_overflow(count, (uint64_t)unimem_dtype_size(e[i].dtype), &bytes) ||
		    e[i].end < e[i].begin || e[i].end - e[i].begin != bytes)
			return umi_fail(BAD, "safetensors: tensor \"%.64s\": data_offsets [%llu, %llu] "
					"do not hold its dtype and shape", e[i].name,
					(unsigned long long)e[i].begin, (unsigned long long)e[i].end);
	}
	if (n > 1) /* qsort's base must not be NULL, even for 0 entries (UBSan) */
		qsort(e, n, sizeof *e, cmp_offsets);
	uint64_t at = 0;
	for (size_t i = 0; i < n; i++) {
		if (e[i].begin != at)
			return umi_fail(BAD, "safetensors: tensor \"%.64s\" begins at byte %llu of "
					"the data, not %llu (a gap or an overlap)", e[i].name,
					(unsigned long long)e[i].begin, (unsigned long long)at);
		at = e[i].end;
	}
	if (at != data_len)
		return umi_fail(BAD, "safetensors: the tensors cover %llu bytes of data, the file "
				"holds %llu", (unsigned long long)at, (unsigned long long)data_len);
	return 0;
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
			err = umi_fail(BAD, "safetensors header: tensor \"%.64s\" twice",
				       ni[i].name);
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
				err = umi_fail(BAD, "safetensors header: __metadata__ key "
					       "\"%.64s\" twice", st->meta[i].key);
	}
	if (err) {
		st->arena = NULL;
		unimem_safetensors_close(st);
		return err;
	}
	*out = st;
	return 0;
}

int umi_st_parse(unimem_safetensors **out, struct entry **entries, const unsigned char *hdr,
		 size_t n, uint64_t data_len)
{
	char *arena = malloc(n ? n : 1);
	if (!arena)
		return -ENOMEM;
	struct parser ps = {.js = {.start = hdr, .p = hdr, .end = hdr + n, .arena = arena}};
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

