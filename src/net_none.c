/* SPDX-License-Identifier: MIT */
/* The network backend where unimem has no UCX backend (macOS): every call says -ENOSYS. */
#include "base.h"
#include "net_pvt.h"

#include <errno.h>

static int none(void)
{
	return umi_fail(-ENOSYS, "unimem_net has no backend on this platform (UCX on Linux)");
}

void umi_net_release(unimem_block *b)
{
	(void)b;
}

int unimem_net_export(const unimem_block *b, unsigned flags, void *desc, size_t cap, size_t *len)
{
	(void)b, (void)flags, (void)desc, (void)cap;
	if (len)
		*len = 0;
	return none();
}

int unimem_net_unexport(const unimem_block *b)
{
	(void)b;
	return none();
}

int unimem_net_import(unimem_remote **out, const void *desc, size_t len)
{
	(void)desc, (void)len;
	if (out)
		*out = NULL;
	return none();
}

size_t unimem_remote_size(const unimem_remote *r)
{
	(void)r;
	return 0;
}

int unimem_remote_read(unimem_remote *r, uint64_t offset, void *dst, size_t len)
{
	(void)r, (void)offset, (void)dst, (void)len;
	return none();
}

int unimem_remote_write(unimem_remote *r, uint64_t offset, const void *src, size_t len)
{
	(void)r, (void)offset, (void)src, (void)len;
	return none();
}

int unimem_remote_read_start(unimem_remote *r, uint64_t offset, void *dst, size_t len)
{
	return unimem_remote_read(r, offset, dst, len);
}

int unimem_remote_write_start(unimem_remote *r, uint64_t offset, const void *src, size_t len)
{
	return unimem_remote_write(r, offset, src, len);
}

int unimem_remote_wait(unimem_remote *r)
{
	(void)r;
	return none();
}

int unimem_remote_set_timeout(unimem_remote *r, unsigned ms)
{
	(void)r, (void)ms;
	return none();
}

void unimem_remote_close(unimem_remote *r)
{
	(void)r;
}
