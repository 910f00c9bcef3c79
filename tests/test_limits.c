/* SPDX-License-Identifier: MIT */
/* Memory limits: Block, Tape, Layout and Grid opens (and lookups, receives) under a small
 * RLIMIT_MEMLOCK, RLIMIT_AS and RLIMIT_NOFILE, as `nobody` when root (root's
 * CAP_IPC_LOCK ignores the memlock limit). Every refusal is the documented error, leaves
 * the out-parameter NULL and leaks no fd, no mapping and no locked page. */
#include <unimem/unimem.h>

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

static size_t page(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

/* What a leak would change. */
struct census {
	int fds, maps;
	long locked_kb;
};

static struct census census(void)
{
	return (struct census){ count_fds(), count_maps(), status_kb("VmLck") };
}

static void same_census(struct census before, const char *after_what)
{
	struct census now = census();
	cr_assert_eq(now.fds, before.fds, "fd leaked after %s", after_what);
	cr_assert_eq(now.maps, before.maps, "mapping leaked after %s", after_what);
	cr_assert_eq(now.locked_kb, before.locked_kb, "locked memory left after %s", after_what);
}

/* One open and close of each kind first, so lazily bound code and the allocator's first
 * arenas are in place before counting. */
static void warm_up(void)
{
	unimem_block *b;
	unimem_tape *t;
	unimem_layout *l;
	cr_assert_eq(unimem_block_open(&b, 4096, UNIMEM_BLOCK_UNPINNED), 0);
	unimem_block_close(b);
	cr_assert_eq(unimem_tape_start_flags(&t, 4096, UNIMEM_BLOCK_UNPINNED), 0);
	unimem_tape_close(t);
	cr_assert_eq(unimem_layout_open_flags(&l, 4096, 4096, 4096, UNIMEM_BLOCK_UNPINNED), 0);
	unimem_layout_close(l);
	unimem_grid *g;
	cr_assert_eq(unimem_grid_open_flags(&g, 64, 64, UNIMEM_BLOCK_UNPINNED), 0);
	unimem_grid_close(g);
	(void)unimem_strerror(-EPERM);
}

static void become_nobody(void)
{
	cr_assert_eq(drop_privileges(), 0, "cannot drop root to test the limits");
	warm_up();
}

static void become_nobody_with_memlock(rlim_t bytes)
{
	cr_assert_eq(drop_privileges(), 0, "cannot drop root to test RLIMIT_MEMLOCK");
	struct rlimit rl = { bytes, bytes };
	cr_assert_eq(setrlimit(RLIMIT_MEMLOCK, &rl), 0);
	warm_up();
}

/* Every opener, pinned (flags 0) or not, so that each limit is tried on each. */
enum opener { BLOCK, TAPE, LAYOUT, GRID };
static const char *const opener_name[] = { "block", "tape", "layout", "grid" };

/* Open `bytes` (a Layout splits them over its three Tapes) and close it again.
 * Returns the open's result. */
static int open_close(enum opener o, size_t bytes, unsigned flags)
{
	int err;
	switch (o) {
	case BLOCK: {
		unimem_block *b = (unimem_block *)0x1;
		err = unimem_block_open(&b, bytes, flags);
		if (err)
			cr_assert_null(b, "block out-parameter not NULL on %d", err);
		else
			memset(unimem_block_ptr(b), 0x3c, unimem_block_size(b));
		unimem_block_close(b);
		break;
	}
	case TAPE: {
		unimem_tape *t = (unimem_tape *)0x1;
		err = unimem_tape_start_flags(&t, bytes, flags);
		if (err) {
			cr_assert_null(t, "tape out-parameter not NULL on %d", err);
		} else {
			unsigned char *p = unimem_tape_take(t, unimem_tape_capacity(t), 1);
			cr_assert_not_null(p);
			memset(p, 0x3c, unimem_tape_capacity(t));
			unimem_tape_close(t);
		}
		break;
	}
	case LAYOUT: {
		unimem_layout *l = (unimem_layout *)0x1;
		/* Half weights, a quarter each scratch and history (a tiny one is weights only). */
		err = unimem_layout_open_flags(&l, bytes - bytes / 4 * 2, bytes / 4, bytes / 4, flags);
		if (err) {
			cr_assert_null(l, "layout out-parameter not NULL on %d", err);
		} else {
			unimem_tape *tapes[3] = { unimem_layout_weights(l), unimem_layout_scratch(l),
						  unimem_layout_history(l) };
			for (int i = 0; i < 3; i++) {
				size_t cap = unimem_tape_capacity(tapes[i]);
				unsigned char *p = unimem_tape_take(tapes[i], cap, 1);
				cr_assert(cap == 0 || p, "layout tape %d", i);
				if (cap)
					memset(p, 0x3c, cap);
			}
			unimem_layout_close(l);
		}
		break;
	}
	case GRID: {
		/* Cells of 4 KiB; the pool's state adds to the Block (the bitmap, a word per cell,
		 * and 48 KiB of holder slots). */
		unimem_grid *g = (unimem_grid *)0x1;
		size_t cells = bytes / 4096 ? bytes / 4096 : 1;
		err = unimem_grid_open_flags(&g, 4096, cells, flags);
		if (err) {
			cr_assert_null(g, "grid out-parameter not NULL on %d", err);
		} else {
			unsigned char *c;
			size_t n = 0;
			while ((c = unimem_grid_take(g))) {
				memset(c, 0x3c, 4096);
				n++;
			}
			cr_assert_eq(n, cells);
			unimem_grid_close(g);
		}
		break;
	}
	}
	return err;
}

Test(limits, memlock_refuses_pinned_tape_and_layout_with_eperm)
{
	become_nobody_with_memlock(64 << 10);
	for (int o = BLOCK; o <= GRID; o++) {
		struct census before = census();
		cr_assert_eq(open_close(o, 16 << 20, 0), -EPERM, "%s", opener_name[o]);
		same_census(before, opener_name[o]);
		const char *msg = unimem_strerror(-EPERM);
		cr_assert(strstr(msg, "RLIMIT_MEMLOCK"), "%s", msg);
		cr_assert(strstr(msg, "65536"), "the limit's value: %s", msg);
		cr_assert(strstr(msg, "UNIMEM_BLOCK_UNPINNED"), "%s", msg);
		cr_assert(strstr(msg, "ulimit -l"), "%s", msg);
	}
}

Test(limits, memlock_leaves_unpinned_tape_and_layout_working)
{
	become_nobody_with_memlock(64 << 10);
	for (int o = BLOCK; o <= GRID; o++) {
		struct census before = census();
		cr_assert_eq(open_close(o, 16 << 20, UNIMEM_BLOCK_UNPINNED), 0, "%s", opener_name[o]);
		same_census(before, opener_name[o]);
		/* Pinned under the limit still works (a Grid of 2 cells: its state takes 49 KiB). */
		cr_assert_eq(open_close(o, o == GRID ? 8 << 10 : 16 << 10, 0), 0, "%s under the limit",
			     opener_name[o]);
		same_census(before, opener_name[o]);
	}
}

Test(limits, memlock_limit_is_shared_by_all_blocks_and_given_back_at_close)
{
	become_nobody_with_memlock(64 << 10);
	struct census before = census();
	unimem_block *a, *b = (unimem_block *)0x1;
	cr_assert_eq(unimem_block_open(&a, 48 << 10, 0), 0);
	cr_assert(unimem_block_pinned(a));
	cr_assert_eq(status_kb("VmLck"), before.locked_kb + 48);
	/* 48 KiB locked: another 32 KiB passes the 64 KiB limit. */
	cr_assert_eq(unimem_block_open(&b, 32 << 10, 0), -EPERM);
	cr_assert_null(b);
	unimem_tape *t = (unimem_tape *)0x1;
	cr_assert_eq(unimem_tape_start(&t, 32 << 10), -EPERM);
	cr_assert_null(t);
	unimem_layout *l = (unimem_layout *)0x1;
	cr_assert_eq(unimem_layout_open(&l, 8 << 10, 8 << 10, 8 << 10), -EPERM);
	cr_assert_null(l);
	cr_assert_eq(status_kb("VmLck"), before.locked_kb + 48, "a refused open kept a lock");
	unimem_block_close(a);
	/* The limit is free again. */
	cr_assert_eq(unimem_layout_open(&l, 16 << 10, 16 << 10, 16 << 10), 0);
	cr_assert(unimem_block_pinned(unimem_layout_block(l)));
	unimem_layout_close(l);
	same_census(before, "the row of opens");
}

Test(limits, memlock_zero_refuses_every_pin)
{
	become_nobody_with_memlock(0);
	struct census before = census();
	for (int o = BLOCK; o <= GRID; o++) {
		cr_assert_eq(open_close(o, 1, 0), -EPERM, "%s", opener_name[o]);
		cr_assert_eq(open_close(o, 1, UNIMEM_BLOCK_HUGE), -EPERM, "%s huge", opener_name[o]);
		cr_assert_eq(open_close(o, 4096, UNIMEM_BLOCK_UNPINNED), 0, "%s", opener_name[o]);
	}
	same_census(before, "refusals");
	cr_assert(strstr(unimem_strerror(-EPERM), "(0 bytes)"), "%s", unimem_strerror(-EPERM));
}

Test(limits, many_refusals_and_opens_leak_nothing)
{
	become_nobody_with_memlock(256 << 10);
	struct census before = census();
	for (int i = 0; i < 200; i++) {
		enum opener o = (enum opener)(i % 4);
		cr_assert_eq(open_close(o, 1 << 20, 0), -EPERM, "%s, round %d", opener_name[o], i);
		cr_assert_eq(open_close(o, (size_t)(i % 7 + 1) * page(), 0), 0, "%s, round %d",
			     opener_name[o], i);
		cr_assert_eq(open_close(o, (size_t)(i + 1) * page(), UNIMEM_BLOCK_UNPINNED), 0,
			     "%s, round %d", opener_name[o], i);
	}
	same_census(before, "200 rounds");
}

static void skip_where_rlimit_as_cannot_work(void)
{
	if (UNIMEM_TEST_ASAN)
		cr_skip("AddressSanitizer reserves terabytes of shadow address space: RLIMIT_AS "
			"cannot be tested under it (the plain, TSan and valgrind runs test it)");
}

/* Room for what the process maps now plus `room` bytes. */
static void limit_address_space(size_t room)
{
	struct rlimit rl;
	cr_assert_eq(getrlimit(RLIMIT_AS, &rl), 0);
	rl.rlim_cur = (rlim_t)status_kb("VmSize") * 1024 + room;
	cr_assert_eq(setrlimit(RLIMIT_AS, &rl), 0);
}

Test(limits, address_space_limit_refuses_tape_and_layout_with_enomem)
{
	skip_where_rlimit_as_cannot_work();
	become_nobody();
	struct census before = census();
	limit_address_space(256ull << 20);
	for (int o = BLOCK; o <= GRID; o++) {
		cr_assert_eq(open_close(o, 1ull << 30, 0), -ENOMEM, "%s", opener_name[o]);
		same_census(before, opener_name[o]);
		cr_assert_eq(open_close(o, 1ull << 30, UNIMEM_BLOCK_UNPINNED), -ENOMEM, "%s unpinned",
			     opener_name[o]);
		cr_assert_eq(open_close(o, 1ull << 30, UNIMEM_BLOCK_HUGE), -ENOMEM, "%s huge",
			     opener_name[o]);
		same_census(before, opener_name[o]);
		/* What fits still opens (unpinned: the memlock limit is not what is tested). */
		cr_assert_eq(open_close(o, 1 << 20, UNIMEM_BLOCK_UNPINNED), 0, "%s under the limit",
			     opener_name[o]);
		same_census(before, opener_name[o]);
	}
}

Test(limits, address_space_limit_between_blocks)
{
	skip_where_rlimit_as_cannot_work();
	become_nobody();
	limit_address_space(48ull << 20);
	struct census before = census();
	/* 32 MiB fits; a second 32 MiB does not while the first is open. */
	unimem_tape *a, *b = (unimem_tape *)0x1;
	cr_assert_eq(unimem_tape_start_flags(&a, 32 << 20, UNIMEM_BLOCK_UNPINNED), 0);
	cr_assert_eq(unimem_tape_start_flags(&b, 32 << 20, UNIMEM_BLOCK_UNPINNED), -ENOMEM);
	cr_assert_null(b);
	unimem_layout *l = (unimem_layout *)0x1;
	cr_assert_eq(unimem_layout_open_flags(&l, 16 << 20, 8 << 20, 8 << 20, UNIMEM_BLOCK_UNPINNED),
		     -ENOMEM);
	cr_assert_null(l);
	cr_assert_eq(unimem_layout_open(&l, 16 << 20, 8 << 20, 8 << 20), -ENOMEM);
	cr_assert_null(l);
	unimem_tape_close(a);
	cr_assert_eq(unimem_layout_open_flags(&l, 16 << 20, 8 << 20, 8 << 20, UNIMEM_BLOCK_UNPINNED),
		     0);
	unimem_layout_close(l);
	same_census(before, "the row of opens");
}

Test(limits, out_of_file_descriptors_gives_emfile_and_leaks_nothing)
{
	warm_up();
	struct census before = census();
	/* Lower the soft limit to the highest fd in use and fill the gaps below it. */
	struct rlimit saved, rl;
	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &saved), 0);
	int top = dup(0);
	cr_assert_geq(top, 0);
	close(top);
	rl = (struct rlimit){ (rlim_t)top, saved.rlim_max };
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	int filler[1024], n = 0, fd;
	while (n < 1024 && (fd = dup(0)) >= 0)
		filler[n++] = fd;
	cr_assert_eq(errno, EMFILE, "no fd left");
	for (int o = BLOCK; o <= GRID; o++) {
		cr_assert_eq(open_close(o, 4096, 0), -EMFILE, "%s", opener_name[o]);
		cr_assert_eq(open_close(o, 4096, UNIMEM_BLOCK_UNPINNED | UNIMEM_BLOCK_HUGE), -EMFILE,
			     "%s", opener_name[o]);
	}
	cr_assert(strstr(unimem_strerror(-EMFILE), "file descriptor"), "%s",
		  unimem_strerror(-EMFILE));
	for (int i = 0; i < n; i++)
		close(filler[i]);
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &saved), 0);
	same_census(before, "EMFILE");
	for (int o = BLOCK; o <= GRID; o++)
		cr_assert_eq(open_close(o, 4096, 0), 0, "%s after", opener_name[o]);
	same_census(before, "EMFILE and the opens after");
}

/* Looked-up and received Blocks pin by the rule of a default open: under a small
 * RLIMIT_MEMLOCK both say -EPERM and leak nothing; the same Block opened unpinned by this
 * process stays usable. */
Test(limits, lookup_and_recv_pin_by_the_open_rule)
{
	become_nobody_with_memlock(64 << 10);
	unimem_block *b, *x = (unimem_block *)0x1;
	cr_assert_eq(unimem_block_open(&b, 1 << 20, UNIMEM_BLOCK_UNPINNED), 0);
	uint32_t id = unimem_block_id(b);
	cr_assert_neq(id, 0);
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	/* Once first, so that first-use allocations do not count. */
	cr_assert_eq(unimem_block_lookup(&x, id), -EPERM);
	cr_assert_eq(unimem_block_send(sv[0], b), 0);
	cr_assert_eq(unimem_block_recv(&x, sv[1]), -EPERM);
	struct census before = census();
	x = (unimem_block *)0x1;
	cr_assert_eq(unimem_block_lookup(&x, id), -EPERM, "lookup beyond RLIMIT_MEMLOCK");
	cr_assert_null(x);
	same_census(before, "a refused lookup");
	cr_assert_eq(unimem_block_send(sv[0], b), 0);
	x = (unimem_block *)0x1;
	cr_assert_eq(unimem_block_recv(&x, sv[1]), -EPERM, "recv beyond RLIMIT_MEMLOCK");
	cr_assert_null(x);
	same_census(before, "a refused recv");
	const char *msg = unimem_strerror(-EPERM);
	cr_assert(strstr(msg, "RLIMIT_MEMLOCK") && strstr(msg, "UNIMEM_BLOCK_UNPINNED"), "%s", msg);
	((volatile unsigned char *)unimem_block_ptr(b))[0] = 1;
	close(sv[0]);
	close(sv[1]);
	unimem_block_close(b);
}

/* A peer's sparse Block costs the peer nothing: recv and lookup refused by
 * RLIMIT_MEMLOCK must refuse before a page is touched (no page allocated in the
 * peer's file, nothing locked here). */
Test(limits, recv_and_lookup_beyond_memlock_touch_no_page_of_a_sparse_block)
{
	become_nobody_with_memlock(64 << 10);
	unimem_block *b, *x = (unimem_block *)0x1;
	cr_assert_eq(unimem_block_open(&b, (size_t)512 << 20, UNIMEM_BLOCK_UNPINNED), 0);
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	struct census before = census();
	cr_assert_eq(unimem_block_send(sv[0], b), 0);
	cr_assert_eq(unimem_block_recv(&x, sv[1]), -EPERM);
	cr_assert_null(x);
	cr_assert_eq(unimem_block_lookup(&x, unimem_block_id(b)), -EPERM);
	cr_assert_null(x);
	struct stat st;
	cr_assert_eq(fstat(unimem_block_fd(b), &st), 0);
	cr_assert_eq(st.st_blocks, 0, "%lld blocks allocated", (long long)st.st_blocks);
	same_census(before, "refused recv and lookup of a sparse Block");
	close(sv[0]);
	close(sv[1]);
	unimem_block_close(b);
}
