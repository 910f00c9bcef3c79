/* SPDX-License-Identifier: MIT */
/* A tiny streaming JSON writer for the unimem command (well-formed output, no library). */
#ifndef UNIMEM_TOOLS_JSON_H
#define UNIMEM_TOOLS_JSON_H

#include <math.h>
#include <stdbool.h>
#include <stdio.h>

#define JW_DEPTH 16

struct jw {
	FILE *f;
	int depth;
	bool first[JW_DEPTH];
};

static inline void jw_init(struct jw *w, FILE *f)
{
	w->f = f;
	w->depth = 0;
	w->first[0] = true;
}

static inline void jw_string_body(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		switch (*p) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\t': fputs("\\t", f); break;
		case '\r': fputs("\\r", f); break;
		default:
			if (*p < 0x20)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

/* Comma, newline and indent before a value; the key when inside an object. */
static inline void jw_prefix(struct jw *w, const char *key)
{
	if (!w->first[w->depth])
		fputc(',', w->f);
	w->first[w->depth] = false;
	if (w->depth > 0) {
		fputc('\n', w->f);
		for (int i = 0; i < w->depth; i++)
			fputs("  ", w->f);
	}
	if (key) {
		jw_string_body(w->f, key);
		fputs(": ", w->f);
	}
}

static inline void jw_open(struct jw *w, const char *key, char c)
{
	jw_prefix(w, key);
	fputc(c, w->f);
	if (w->depth + 1 < JW_DEPTH)
		w->depth++;
	w->first[w->depth] = true;
}

static inline void jw_close(struct jw *w, char c)
{
	bool empty = w->first[w->depth];
	if (w->depth > 0)
		w->depth--;
	if (!empty) {
		fputc('\n', w->f);
		for (int i = 0; i < w->depth; i++)
			fputs("  ", w->f);
	}
	fputc(c, w->f);
	if (w->depth == 0)
		fputc('\n', w->f);
}

static inline void jw_object(struct jw *w, const char *key) { jw_open(w, key, '{'); }
static inline void jw_object_end(struct jw *w) { jw_close(w, '}'); }
static inline void jw_array(struct jw *w, const char *key) { jw_open(w, key, '['); }
static inline void jw_array_end(struct jw *w) { jw_close(w, ']'); }

static inline void jw_str(struct jw *w, const char *key, const char *v)
{
	jw_prefix(w, key);
	if (v)
		jw_string_body(w->f, v);
	else
		fputs("null", w->f);
}

/* Non-finite numbers have no JSON spelling: null. */
static inline void jw_num(struct jw *w, const char *key, double v)
{
	jw_prefix(w, key);
	if (isfinite(v))
		fprintf(w->f, "%.6g", v);
	else
		fputs("null", w->f);
}

static inline void jw_int(struct jw *w, const char *key, long long v)
{
	jw_prefix(w, key);
	fprintf(w->f, "%lld", v);
}

static inline void jw_bool(struct jw *w, const char *key, bool v)
{
	jw_prefix(w, key);
	fputs(v ? "true" : "false", w->f);
}

static inline void jw_null(struct jw *w, const char *key)
{
	jw_prefix(w, key);
	fputs("null", w->f);
}

#endif
