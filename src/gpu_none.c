/* SPDX-License-Identifier: MIT */
/* GPU, for builds without a GPU backend: no device, nothing mapped. */
#include "gpu_pvt.h"
#include "weights_pvt.h"

#include <errno.h>

int unimem_gpu_count(void)
{
	return 0;
}

int unimem_gpu_map(const unimem_block *b, void **device_ptr)
{
	if (device_ptr)
		*device_ptr = NULL;
	if (!b || !device_ptr)
		return -EINVAL;
	return -ENODEV;
}

int unimem_gpu_unmap(const unimem_block *b)
{
	return b ? -ENODEV : -EINVAL;
}

int unimem_gpu_ptr(const unimem_block *b, const void *host, void **device)
{
	if (device)
		*device = NULL;
	if (!b || !host || !device)
		return -EINVAL;
	return -ENODEV;
}

void umi_gpu_release(unimem_block *b)
{
	(void)b;
}

const struct umi_cuda *umi_cuda_driver(void)
{
	return NULL;
}

int umi_cuda_fail(int r, const char *call)
{
	(void)r;
	(void)call;
	return -ENODEV;
}
