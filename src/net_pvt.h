/* SPDX-License-Identifier: MIT */
/* What the network backend (net_ucx.c over UCX, or net_none.c) offers the Block. Never
 * installed. */
#ifndef UNIMEM_NET_PVT_H
#define UNIMEM_NET_PVT_H

#include "block_pvt.h"

/* Revoke a network export of a Block that is being closed (no-op when nothing is
 * exported: one atomic load). */
void umi_net_release(unimem_block *b);

#endif
