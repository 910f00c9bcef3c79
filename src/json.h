/* SPDX-License-Identifier: MIT */
/* A strict JSON lexer over a bounded buffer (safetensors.c's header parser stands on it):
 * whitespace, single characters, strings (escapes, \u with surrogate pairs, UTF-8
 * validation) and non-negative integers. It never reads past `end`, never recurses and
 * never allocates: strings are decoded into the caller's arena, which `end - p` bytes
 * always fit (a decoded string with its NUL is never longer than its quoted form). Every
 * refusal is -EBADMSG, with the detail recorded (umi_fail). Never installed. */
#ifndef UNIMEM_JSON_H
#define UNIMEM_JSON_H

#include "base.h"

struct umi_json {
	const unsigned char *start; /* the first byte, for the offsets the details give */
	const unsigned char *p, *end;
	char *arena;                /* where strings are decoded to */
	size_t used;                /* bytes of the arena taken */
};

/* Skip JSON whitespace. */
void umi_json_skip_ws(struct umi_json *js);

/* Skip whitespace, then consume `c`; false (nothing consumed) when `c` is not next. */
bool umi_json_take(struct umi_json *js, unsigned char c);

/* A JSON string, decoded into the arena with a NUL; *len (when not NULL) its length. A
 * string holding U+0000 is refused (it could not be a C string). 0 or -EBADMSG. */
int umi_json_string(struct umi_json *js, const char **out, size_t *len);

/* A non-negative integer no greater than INT64_MAX: digits only, no sign, fraction or
 * exponent, no leading zero. 0 or -EBADMSG. */
int umi_json_uint(struct umi_json *js, uint64_t *out);

#endif
