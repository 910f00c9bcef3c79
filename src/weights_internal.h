/* SPDX-License-Identifier: MIT */
/* Streaming weights (issue 16), shared by weights.c (the checkpoint and its accessors),
 * weights_index.c (model.safetensors.index.json) and weights_stream.c (the upload). */
#ifndef UNIMEM_WEIGHTS_INTERNAL_H
#define UNIMEM_WEIGHTS_INTERNAL_H

#include "weights_pvt.h"
#include "load_pvt.h"
#include "safetensors_pvt.h"
#include "os/os.h"

/* One tensor of a safetensors header, in data order: [begin, end) from the data's start. */
struct umi_st_tensor {
	const char *name;
	int dtype;
	int ndim;
	int64_t shape[UNIMEM_VIEW_MAX_DIMS];
	uint64_t begin, end;
};

struct w_shard {
	int fd;                   /* open until the upload is done */
	uint64_t size;            /* bytes of the file */
	uint64_t data_at;         /* file offset of its data section */
	unimem_safetensors *st;   /* names and metadata */
	struct umi_st_tensor *t;  /* its tensors, in data order */
	size_t count;
	size_t first;             /* index of its first tensor in the model */
};

struct w_tensor {
	const char *name;
	int dtype, ndim;
	const int64_t *shape;
	size_t shard;
	uint64_t file_at;         /* file offset of its first byte */
	uint64_t nbytes;
	size_t offset;            /* in the destination */
};

struct unimem_weights {
	unsigned flags;
	size_t nshards;
	struct w_shard *shards;
	size_t count;
	struct w_tensor *t;
	size_t *by_name;          /* indices sorted by name */
	size_t bytes;             /* destination size */
	int device;               /* -2 until uploaded */
	unsigned char *base;      /* destination (device address for a GPU) */
	bool owns;                /* base was allocated here */
	int ctx_device;           /* device whose primary context is retained, or -1 */
	size_t staging;
};

/* An index: the shard files (the index's directory prepended; sorted, each once) and
 * the weight map, n names with the index of each one's shard. */
struct w_index {
	char **files;
	size_t nfiles;
	char **names;
	size_t *shard_of;
	size_t n;
};
int umi_weights_index_parse(const char *path, struct w_index *ix);
void umi_weights_index_free(struct w_index *ix);

/* Stream w's data into [base, base + w->bytes) of `device` (weights_stream.c). */
int umi_weights_stream(unimem_weights *w, int device, unsigned char *base);

/* Free device memory allocated by unimem for w (weights_stream.c). */
void umi_weights_free_device(unimem_weights *w);

#endif
