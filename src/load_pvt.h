/* SPDX-License-Identifier: MIT */
/* What load.c offers safetensors.c. Never installed. */
#ifndef UNIMEM_LOAD_PVT_H
#define UNIMEM_LOAD_PVT_H

#include "base.h"

/* Read [off, off + len) of fd's file into dst, where dst - off is a multiple of 4096:
 * cached pages with pread, the others with O_DIRECT (flags UNIMEM_READ_*).
 * 0 or a negative errno. */
int umi_read_range(int fd, unsigned char *dst, uint64_t off, size_t len, unsigned flags);

#endif
