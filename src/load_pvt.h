/* SPDX-License-Identifier: MIT */
/* What load.c offers safetensors.c. Never installed. */
#ifndef UNIMEM_LOAD_PVT_H
#define UNIMEM_LOAD_PVT_H

#include "base.h"

/* Read [off, off + len) of fd's file into dst, where dst - off is a multiple of 4096:
 * cached pages with pread, the others with O_DIRECT (flags UNIMEM_READ_*).
 * 0 or a negative errno. */
int umi_read_range(int fd, unsigned char *dst, uint64_t off, size_t len, unsigned flags);

/* open() for reading that never blocks and refuses non-regular files with -EINVAL; an
 * fd or a negative errno. */
int umi_open_regular(const char *path);

/* Move [p, p + len) to p - s (s < 4096), in parallel chunks where CPUs are idle. */
void umi_shift_down(unsigned char *p, size_t len, size_t s);

/* Whether the range's pages are in the page cache (read with pread alone). */
bool umi_range_cached(int fd, uint64_t off, size_t len);

#endif
