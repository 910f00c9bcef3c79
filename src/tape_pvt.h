/* SPDX-License-Identifier: MIT */
/* The Tape as the other files of src/ see it (tape.c): its flags, its set-up, and the
 * room helpers that the loaders (load.c, safetensors.c) take and give back through.
 * Never installed. */
#ifndef UNIMEM_TAPE_PVT_H
#define UNIMEM_TAPE_PVT_H

#include "base.h"

/* Bits of unimem_tape.flags. */
#define UMI_TAPE_OWNS_BLOCK 1u  /* from unimem_tape_start(): closing it closes the Block */
#define UMI_TAPE_BORROWED 2u    /* belongs to a Layout: unimem_tape_close() ignores it */

/* Initialise a Tape over [base, base + bytes) of Block b. */
void umi_tape_init(unimem_tape *t, unimem_block *b, unsigned char *base, size_t bytes,
		   uint32_t flags);

/* Take room for len bytes at `align` from t (NULL when it does not fit), setting *before
 * to the cursor word before the take (its epoch bits included: an opaque token); give_back
 * moves the cursor from the offset `end` back to `before` only while nothing was taken
 * after and no clear came between. */
void *umi_tape_take_room(unimem_tape *t, size_t len, size_t align, uint64_t *before);
void umi_tape_give_back(unimem_tape *t, uint64_t before, uint64_t end);

#endif
