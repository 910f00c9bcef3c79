/* SPDX-License-Identifier: MIT */
/* What view.c offers safetensors.c. Never installed. */
#ifndef UNIMEM_VIEW_PVT_H
#define UNIMEM_VIEW_PVT_H

#include "base.h"

/* The unimem_dtype of a safetensors dtype name (not NUL-terminated); 0 when unknown. */
int umi_dtype_from_name(const char *name, size_t len);

#endif
