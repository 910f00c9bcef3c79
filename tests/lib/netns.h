/* SPDX-License-Identifier: MIT */
/* Two network namespaces joined by a veth pair, for test_net and bench_net (root and ip(8)
 * needed). They are named <prefix><pid>-a and -b and removed, with every process still in
 * them, by a guardian process that waits for its maker to go: it removes them when the
 * maker calls netns_pair_remove(), exits, crashes or is killed (SIGKILL included). Pairs
 * left by an earlier maker that is dead (a guardian killed with it) are removed by
 * netns_sweep(), which netns_pair_make() calls first. */
#ifndef UNIMEM_TEST_NETNS_H
#define UNIMEM_TEST_NETNS_H

#include <stdbool.h>
#include <sys/types.h>

struct netns_pair {
	char a[32], b[32];    /* namespace names */
	char ipa[20], ipb[20]; /* 10.<net>.<k>.1 in a, .2 in b (a /30) */
	pid_t guard;          /* the guardian, 0 when none */
	int guard_fd;         /* its pipe: it acts when every copy of this end is closed */
};

/* Whether this process may make namespaces: root, and ip(8) found. */
bool netns_can_make(void);

/* Remove the pairs named <prefix><pid>-a/-b whose pid is not alive, and what runs in them.
 * Returns how many namespaces it removed. */
int netns_sweep(const char *prefix);

/* Make the pair (prefix: 3 letters or so; net: the second byte of its 10.x.y.0/30), with
 * the guardian, its loopbacks and the veth up (waits, bounded, for the carrier, as UCX opens
 * only running interfaces). Returns 0, or -1 with nothing left (the guardian removed it). */
int netns_pair_make(struct netns_pair *p, const char *prefix, int net);

/* In a child: move into namespace `name` (and a private sysfs of it, as `ip netns exec`
 * does: UCX lists /sys/class/net), die with the parent (PR_SET_PDEATHSIG) and close the
 * guardian's pipe, so that only the maker keeps the guardian waiting. Returns 0 or -1. */
int netns_enter(const struct netns_pair *p, const char *name);

/* Remove the pair now (kill what runs in it, delete both namespaces; the veth goes with
 * them) and wait for that, bounded (10 s). Idempotent. */
void netns_pair_remove(struct netns_pair *p);

/* Whether a namespace of that name exists. */
bool netns_exists(const char *name);

#endif
