/* SPDX-License-Identifier: MIT */
/* GPU, for builds without a GPU backend: no device, nothing mapped. */
#include "internal.h"

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
	(void)b;
	return -ENODEV;
}

void umi_gpu_release(unimem_block *b)
{
	(void)b;
}
