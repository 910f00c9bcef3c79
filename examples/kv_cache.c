/* SPDX-License-Identifier: MIT */
/* A paged KV cache shared by two processes: the pages are the cells of one Grid, in one
 * Block; each sequence has a page table (which pages hold its tokens, in order) in a second
 * Block. The writer (this process) fills the pages of a few sequences; the reader (a
 * process of its own, which looks both Blocks up by id and attaches to the Grid) reads
 * every token back through the page tables, checks it, and frees the pages of the
 * sequences it finished by giving them back to the SAME pool from its side. Where a GPU is
 * there, the reader maps the page Block and prints where each sequence's pages are on the
 * device (device address of page p = device base + p * page size: what a paged-attention
 * kernel is given); the check itself reads on the CPU.
 *
 *   kv_cache            run both sides; exit 0 when every token read back is right
 */
#include <unimem/unimem.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum {
	PAGE = 4096,           /* bytes per page: 16 tokens of 64 floats (K and V, 32 each) */
	PAGES = 256,           /* the pool */
	FLOATS = 64,           /* per token */
	TOKENS_PER_PAGE = PAGE / (FLOATS * 4),
	SEQS = 6,
	MAX_PAGES_PER_SEQ = 32,
};

/* The page tables (in their own Block). */
struct seq_table {
	uint32_t tokens;
	uint32_t pages;
	uint32_t page[MAX_PAGES_PER_SEQ]; /* cell indices in the Grid */
};
struct tables {
	uint32_t ready;
	struct seq_table seq[SEQS];
};

static float kv_value(uint32_t s, uint32_t t, uint32_t i)
{
	return (float)(s * 100000 + t * 100 + i);
}

static int fail(const char *what, int err)
{
	fprintf(stderr, "kv_cache: %s: %s\n", what, unimem_strerror(err));
	return 1;
}

/* The reader: look both Blocks up, attach, read every token, give the pages back. */
static int reader(uint32_t pages_id, uint32_t tables_id)
{
	unimem_block *pb, *tb;
	unimem_grid *g;
	int err = unimem_block_lookup(&pb, pages_id);
	if (err)
		return fail("lookup of the page Block", err);
	if ((err = unimem_block_lookup(&tb, tables_id)))
		return fail("lookup of the table Block", err);
	if ((err = unimem_grid_attach_as(&g, pb, PAGE, PAGES)))
		return fail("attach to the page pool", err);
	struct tables *tab = unimem_block_ptr(tb);
	if (!__atomic_load_n(&tab->ready, __ATOMIC_ACQUIRE))
		return fail("page tables not ready", -EINVAL);
	unsigned char *base = unimem_block_ptr(pb);
	void *dev = NULL;
	bool on_gpu = unimem_gpu_map(pb, &dev) == 0;
	long bad = 0, read = 0;
	for (uint32_t s = 0; s < SEQS; s++) {
		const struct seq_table *q = &tab->seq[s];
		if (q->pages > MAX_PAGES_PER_SEQ)
			return fail("a page table out of range", -EINVAL);
		for (uint32_t t = 0; t < q->tokens; t++) {
			uint32_t p = q->page[t / TOKENS_PER_PAGE];
			if (p >= PAGES)
				return fail("a page index out of range", -EINVAL);
			const float *kv = (const float *)(const void *)(base + (size_t)p * PAGE) +
					  (t % TOKENS_PER_PAGE) * FLOATS;
			for (uint32_t i = 0; i < FLOATS; i++)
				bad += kv[i] != kv_value(s, t, i);
			read++;
		}
		if (on_gpu)
			fprintf(stderr, "kv_cache: sequence %u: first page at device %p\n", s,
				(void *)((char *)dev + (size_t)q->page[0] * PAGE));
		/* Finished with this sequence: its pages go back to the shared pool. */
		for (uint32_t k = 0; k < q->pages; k++)
			if (unimem_grid_give(g, base + (size_t)q->page[k] * PAGE) != 0)
				bad++;
	}
	if (on_gpu)
		unimem_gpu_unmap(pb);
	fprintf(stderr, "kv_cache: reader: %ld tokens read (%s), %ld wrong\n", read,
		on_gpu ? "page Block mapped on the GPU, checked on the CPU" : "no GPU: on the CPU", bad);
	unimem_grid_close(g);
	unimem_block_close(pb);
	unimem_block_close(tb);
	return bad ? 1 : 0;
}

int main(void)
{
	unimem_grid *g;
	unimem_block *tb;
	int err = unimem_grid_open_flags(&g, PAGE, PAGES, UNIMEM_BLOCK_UNPINNED);
	if (err)
		return fail("open the page pool", err);
	if ((err = unimem_block_open(&tb, sizeof(struct tables), UNIMEM_BLOCK_UNPINNED)))
		return fail("open the table Block", err);
	struct tables *tab = unimem_block_ptr(tb);

	/* The writer: sequences of different lengths, a page taken whenever one fills. */
	for (uint32_t s = 0; s < SEQS; s++) {
		struct seq_table *q = &tab->seq[s];
		q->tokens = 50 + 37 * s;
		for (uint32_t t = 0; t < q->tokens; t++) {
			if (t % TOKENS_PER_PAGE == 0) {
				void *page = unimem_grid_take(g);
				if (!page || q->pages == MAX_PAGES_PER_SEQ)
					return fail("out of pages", -ENOMEM);
				q->page[q->pages++] = (uint32_t)unimem_grid_index(g, page);
			}
			float *kv = (float *)(void *)((unsigned char *)unimem_block_ptr(unimem_grid_block(g)) +
						      (size_t)q->page[t / TOKENS_PER_PAGE] * PAGE) +
				    (t % TOKENS_PER_PAGE) * FLOATS;
			for (uint32_t i = 0; i < FLOATS; i++)
				kv[i] = kv_value(s, t, i);
		}
	}
	size_t out = PAGES - unimem_grid_available(g);
	__atomic_store_n(&tab->ready, 1, __ATOMIC_RELEASE);

	pid_t pid = fork();
	if (pid == 0) {
		/* A process of its own, as a separate program would be: it knows the ids only. */
		_exit(reader(unimem_block_id(unimem_grid_block(g)), unimem_block_id(tb)));
	}
	int st = 0;
	waitpid(pid, &st, 0);
	size_t back = unimem_grid_available(g);
	fprintf(stderr, "kv_cache: writer: %zu pages written; after the reader freed them, %zu of %d free\n",
		out, back, PAGES);
	int rc = WIFEXITED(st) && WEXITSTATUS(st) == 0 && back == PAGES ? 0 : 1;
	unimem_block_close(tb);
	unimem_grid_close(g);
	return rc;
}
