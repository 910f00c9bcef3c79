/* SPDX-License-Identifier: MIT */
/* Block: the one front door. Arguments, rounding, the struct, the pinning policy, the
 * close sequence and the accessors, over the platform contract of os/os.h. */
#include "os/os.h"
#include "gpu_pvt.h"
#include "net_pvt.h"

#include <errno.h>
#include <stdlib.h>

#define KNOWN_FLAGS (UNIMEM_BLOCK_UNPINNED | UNIMEM_BLOCK_HUGE | UNIMEM_BLOCK_PRIVATE)

/* A struct for a new holder: one holder, no fd, nothing mapped. */
static unimem_block *new_block(void)
{
	unimem_block *b = calloc(1, sizeof *b);
	if (b)
		b->fd = -1;
	return b;
}

/* Hand over b, made by the backend with `pin`, or free it on failure. */
static int done(unimem_block **out, unimem_block *b, bool pin, int err)
{
	if (err) {
		free(b);
		return err;
	}
	b->pinned = pin;
	*out = b;
	return 0;
}

int umi_block_check_open(size_t bytes, unsigned flags)
{
	if (bytes == 0 || (flags & ~(unsigned)KNOWN_FLAGS))
		return -EINVAL;
	if (!umi_round_up(bytes, umi_os_page_size()))
		return -EINVAL;
	return 0;
}

int unimem_block_open(unimem_block **out, size_t bytes, unsigned flags)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	int bad = umi_block_check_open(bytes, flags);
	if (bad)
		return bad;
	size_t size = umi_round_up(bytes, umi_os_page_size());
	/* Sizes a file length (off_t) or a CFNumber cannot say. */
	if (size > (size_t)INT64_MAX)
		return -ENOMEM;
	unimem_block *b = new_block();
	if (!b)
		return -ENOMEM;
	bool pin = !(flags & UNIMEM_BLOCK_UNPINNED);
	return done(out, b, pin,
		    umi_os_create(b, size, flags & (UNIMEM_BLOCK_HUGE | UNIMEM_BLOCK_PRIVATE), pin));
}

void unimem_block_close(unimem_block *b)
{
	/* DLPack exports hold the Block too (view.c): the last holder tears it down. */
	if (!b || !umi_block_unref(b))
		return;
	umi_net_release(b); /* before the pages go: importers then get errors */
	umi_gpu_release(b);
	umi_os_destroy(b);
	free(b);
}

/* Looked-up and received Blocks are pinned by the rule of a default open: this holder's
 * lock, under this holder's limit. */
int unimem_block_lookup_max(unimem_block **out, uint32_t id, uint64_t max_bytes)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (id == 0)
		return -ENOENT; /* 0 is no Block's id */
	unimem_block *b = new_block();
	if (!b)
		return -ENOMEM;
	return done(out, b, true, umi_os_lookup(b, id, max_bytes, true));
}

int unimem_block_lookup(unimem_block **out, uint32_t id)
{
	return unimem_block_lookup_max(out, id, 0);
}

int unimem_block_send(int unix_socket, const unimem_block *b)
{
	if (!b)
		return -EINVAL;
	return umi_os_send(unix_socket, b);
}

int unimem_block_recv_max(unimem_block **out, int unix_socket, uint64_t max_bytes)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	unimem_block *b = new_block();
	if (!b)
		return -ENOMEM;
	return done(out, b, true, umi_os_recv(b, unix_socket, max_bytes, true));
}

int unimem_block_recv(unimem_block **out, int unix_socket)
{
	return unimem_block_recv_max(out, unix_socket, 0);
}

int unimem_block_seal(unimem_block *b)
{
	if (!b)
		return -EINVAL;
	return umi_os_seal(b);
}

int64_t unimem_block_offset(const unimem_block *b, const void *p)
{
	if (!b || !p)
		return -1;
	uintptr_t a = (uintptr_t)p, base = (uintptr_t)b->ptr;
	if (a < base || a - base >= b->size)
		return -1;
	return (int64_t)(a - base);
}

void *unimem_block_ptr(const unimem_block *b)
{
	return b ? b->ptr : NULL;
}

size_t unimem_block_size(const unimem_block *b)
{
	return b ? b->size : 0;
}

size_t unimem_block_page_size(const unimem_block *b)
{
	return b ? b->page : 0;
}

bool unimem_block_pinned(const unimem_block *b)
{
	return b && b->pinned;
}

bool unimem_block_writable(const unimem_block *b)
{
	return b && b->writable;
}

uint32_t unimem_block_id(const unimem_block *b)
{
	return b ? b->id : 0;
}

int unimem_block_fd(const unimem_block *b)
{
	return b ? b->fd : -1;
}

void *unimem_block_handle(const unimem_block *b)
{
	return b ? b->handle : NULL;
}
