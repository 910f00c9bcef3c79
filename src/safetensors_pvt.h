/* SPDX-License-Identifier: MIT */
/* What the safetensors header parser (safetensors_header.c) hands the loader
 * (safetensors.c). Never installed. */
#ifndef UNIMEM_SAFETENSORS_PVT_H
#define UNIMEM_SAFETENSORS_PVT_H

#include "base.h"

struct entry {
	const char *name;
	int dtype;
	int ndim;
	int64_t shape[UNIMEM_VIEW_MAX_DIMS];
	uint64_t begin, end;
	uint64_t at;             /* where it goes, from the start of the room */
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

/* Parse a header of n bytes (not NUL-terminated) that announces data_len bytes of data.
 * On success *out has names, metadata and entries (views not yet placed) and *entries the
 * entries in data order (the caller frees them). -EBADMSG (the detail says what is
 * wrong), -ENOTSUP (more than 8 dimensions), -ENOMEM. */
int umi_st_parse(unimem_safetensors **out, struct entry **entries, const unsigned char *hdr,
		 size_t n, uint64_t data_len);

#endif
