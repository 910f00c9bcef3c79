/* SPDX-License-Identifier: MIT */
/* The Tape as the other files of src/ see it (tape.c; the room helpers are load.c's for
 * now). Never installed. */
#ifndef UNIMEM_TAPE_PVT_H
#define UNIMEM_TAPE_PVT_H

#include "base.h"

/* Bits of unimem_tape.flags. */
#define UMI_TAPE_OWNS_BLOCK 1u  /* from unimem_tape_start(): closing it closes the Block */
#define UMI_TAPE_BORROWED 2u    /* belongs to a Layout: unimem_tape_close() ignores it */

/* Initialise a Tape over [base, base + bytes) of Block b. */
void umi_tape_init(unimem_tape *t, unimem_block *b, unsigned char *base, size_t bytes,
		   uint32_t flags);

/* Take room for len bytes at 4096 alignment from t (NULL when it does not fit), and
 * give [room, room + len) back while nothing was taken after it. */
void *umi_tape_take_room(unimem_tape *t, size_t len);
void umi_tape_give_back(unimem_tape *t, void *room, size_t len);

#endif
