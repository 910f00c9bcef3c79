/* SPDX-License-Identifier: MIT */
/* The strict JSON lexer of json.h. */
#include "json.h"

#include <errno.h>
#include <string.h>

/* -EBADMSG for what is at the lexer's position, with what was wrong and where. */
static int bad(const struct umi_json *js, const char *what)
{
	return umi_fail(-EBADMSG, "JSON: %s at byte %zu of the header", what,
			(size_t)(js->p - js->start));
}

void umi_json_skip_ws(struct umi_json *js)
{
	while (js->p < js->end &&
	       (*js->p == ' ' || *js->p == '\t' || *js->p == '\n' || *js->p == '\r'))
		js->p++;
}

/* Skip whitespace, then consume `c`. */
bool umi_json_take(struct umi_json *js, unsigned char c)
{
	umi_json_skip_ws(js);
	if (js->p < js->end && *js->p == c) {
		js->p++;
		return true;
	}
	return false;
}

static int hex4(struct umi_json *js, unsigned *out)
{
	if (js->end - js->p < 4)
		return -1;
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		unsigned char c = *js->p++;
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
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
int umi_json_string(struct umi_json *js, const char **out, size_t *len)
{
	if (!umi_json_take(js, '"'))
		return bad(js, "a string expected");
	char *start = js->arena + js->used, *w = start;
	for (;;) {
		if (js->p >= js->end)
			return bad(js, "a string not closed");
		unsigned char c = *js->p;
		if (c == '"') {
			js->p++;
			break;
		}
		if (c < 0x20)
			return bad(js, "a control character in a string");
		if (c != '\\') {
			size_t n = utf8_len(js->p, js->end);
			if (!n)
				return bad(js, "invalid UTF-8 in a string");
			memcpy(w, js->p, n);
			w += n;
			js->p += n;
			continue;
		}
		js->p++;
		if (js->p >= js->end)
			return bad(js, "a string not closed");
		c = *js->p++;
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
			if (hex4(js, &cp))
				return bad(js, "a bad \\u escape");
			if (cp >= 0xdc00 && cp <= 0xdfff)
				return bad(js, "a low surrogate alone");
			if (cp >= 0xd800 && cp <= 0xdbff) {
				unsigned lo;
				if (js->end - js->p < 2 || js->p[0] != '\\' || js->p[1] != 'u')
					return bad(js, "a high surrogate alone");
				js->p += 2;
				if (hex4(js, &lo) || lo < 0xdc00 || lo > 0xdfff)
					return bad(js, "a high surrogate without its low one");
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			if (cp == 0)
				return bad(js, "U+0000 in a string");
			/* \uXXXX is 6 bytes and yields at most 3; a pair is 12 and yields 4. */
			put_utf8(&w, cp);
			break;
		default:
			return bad(js, "an unknown escape");
		}
	}
	*w++ = '\0';
	js->used += (size_t)(w - start);
	*out = start;
	if (len)
		*len = (size_t)(w - start) - 1;
	return 0;
}

/* A non-negative JSON integer no greater than INT64_MAX: digits only, no sign, fraction
 * or exponent, no leading zero. */
int umi_json_uint(struct umi_json *js, uint64_t *out)
{
	umi_json_skip_ws(js);
	const unsigned char *s = js->p;
	uint64_t v = 0;
	while (js->p < js->end && *js->p >= '0' && *js->p <= '9') {
		unsigned d = (unsigned)(*js->p - '0');
		if (v > ((uint64_t)INT64_MAX - d) / 10)
			return bad(js, "an integer over INT64_MAX");
		v = v * 10 + d;
		js->p++;
	}
	size_t n = (size_t)(js->p - s);
	if (n == 0 || (n > 1 && s[0] == '0'))
		return bad(js, "a non-negative integer without a leading zero expected");
	/* "1.5", "1e3": the number does not end at the digits. */
	if (js->p < js->end && (*js->p == '.' || *js->p == 'e' || *js->p == 'E'))
		return bad(js, "a fraction or exponent (an integer expected)");
	*out = v;
	return 0;
}

