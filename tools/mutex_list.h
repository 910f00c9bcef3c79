/* SPDX-License-Identifier: MIT */
/* The mutex free list: the rival every pool is measured against (`unimem bench`'s grid
 * groups). Cells are linked through their first word, behind one
 * pthread mutex. Header-only; not part of the library. */
#ifndef UNIMEM_TOOLS_MUTEX_LIST_H
#define UNIMEM_TOOLS_MUTEX_LIST_H

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

struct umb_mutex_list {
	pthread_mutex_t mu;
	void *head;
	unsigned char *cells;
};

static inline void *umb_mutex_list_take(struct umb_mutex_list *f)
{
	pthread_mutex_lock(&f->mu);
	void *p = f->head;
	if (p)
		f->head = *(void **)p;
	pthread_mutex_unlock(&f->mu);
	return p;
}

static inline int umb_mutex_list_give(struct umb_mutex_list *f, void *p)
{
	pthread_mutex_lock(&f->mu);
	*(void **)p = f->head;
	f->head = p;
	pthread_mutex_unlock(&f->mu);
	return 0;
}

/* count cells of `cell` bytes (a multiple of 64, at least a pointer), 64-byte aligned, all
 * free, the first cell on top. 0 or -ENOMEM. */
static inline int umb_mutex_list_init(struct umb_mutex_list *f, size_t cell, size_t count)
{
	f->head = NULL;
	f->cells = aligned_alloc(64, cell * count);
	if (!f->cells)
		return -ENOMEM;
	pthread_mutex_init(&f->mu, NULL);
	for (size_t i = count; i-- > 0;)
		umb_mutex_list_give(f, f->cells + i * cell);
	return 0;
}

static inline void umb_mutex_list_fini(struct umb_mutex_list *f)
{
	pthread_mutex_destroy(&f->mu);
	free(f->cells);
	f->cells = NULL;
	f->head = NULL;
}

#endif
