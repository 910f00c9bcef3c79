/* SPDX-License-Identifier: MIT */
/* Layout: weights, scratch and history Tapes at page-aligned offsets of ONE Block. */
#include "os/os.h"
#include "tape_pvt.h"

#include <errno.h>
#include <stdlib.h>

struct unimem_layout {
	unimem_tape weights;
	unimem_tape scratch;
	unimem_tape history;
	unimem_block *block;
};

int unimem_layout_open_flags(unimem_layout **out, size_t weights, size_t scratch,
			     size_t history, unsigned flags)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	size_t page = umi_os_page_size();
	size_t w = umi_round_up(weights, page), s = umi_round_up(scratch, page);
	size_t h = umi_round_up(history, page);
	if ((weights && !w) || (scratch && !s) || (history && !h))
		return -EINVAL;  /* rounding overflowed */
	if (w > SIZE_MAX - s || w + s > SIZE_MAX - h || w + s + h == 0)
		return -EINVAL;

	/* A Tape over UNIMEM_TAPE_CAPACITY_MAX: -ENOMEM, as unimem_tape_start(), once bad
	 * input has had its -EINVAL. */
	int bad = umi_block_check_open(w + s + h, flags);
	if (bad)
		return bad;
	if ((uint64_t)w > UNIMEM_TAPE_CAPACITY_MAX || (uint64_t)s > UNIMEM_TAPE_CAPACITY_MAX ||
	    (uint64_t)h > UNIMEM_TAPE_CAPACITY_MAX)
		return -ENOMEM;
	unimem_layout *l = aligned_alloc(UNIMEM_CACHE_LINE, sizeof *l);
	if (!l)
		return -ENOMEM;
	int err = unimem_block_open(&l->block, w + s + h, flags);
	if (err) {
		free(l);
		return err;
	}
	/* Offsets are of the system page; with huge pages the Block may be larger than
	 * the sum, and the last bytes stay unused. */
	unsigned char *base = unimem_block_ptr(l->block);
	umi_tape_init(&l->weights, l->block, base, w, UMI_TAPE_BORROWED);
	umi_tape_init(&l->scratch, l->block, base + w, s, UMI_TAPE_BORROWED);
	umi_tape_init(&l->history, l->block, base + w + s, h, UMI_TAPE_BORROWED);
	*out = l;
	return 0;
}

int unimem_layout_open(unimem_layout **out, size_t weights, size_t scratch, size_t history)
{
	return unimem_layout_open_flags(out, weights, scratch, history, 0);
}

void unimem_layout_close(unimem_layout *l)
{
	if (!l)
		return;
	unimem_block_close(l->block);
	free(l);
}

unimem_tape *unimem_layout_weights(unimem_layout *l)
{
	return l ? &l->weights : NULL;
}

unimem_tape *unimem_layout_scratch(unimem_layout *l)
{
	return l ? &l->scratch : NULL;
}

unimem_tape *unimem_layout_history(unimem_layout *l)
{
	return l ? &l->history : NULL;
}

void unimem_layout_clear_pass(unimem_layout *l)
{
	if (!l)
		return;
	unimem_tape_clear(&l->scratch);
}

void unimem_layout_clear_talk(unimem_layout *l)
{
	if (!l)
		return;
	unimem_tape_clear(&l->scratch);
	unimem_tape_clear(&l->history);
}

const unimem_block *unimem_layout_block(const unimem_layout *l)
{
	return l ? l->block : NULL;
}
