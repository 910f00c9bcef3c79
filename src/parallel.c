/* SPDX-License-Identifier: MIT */
/* The one parallel helper: pieces claimed one at a time by the calling thread and
 * helpers where CPUs are idle, a first-error latch, join. */
#include "os/os.h"

#include <pthread.h>

/* Most helper threads one call starts, whatever it asks. */
#define HELPERS_MAX 32

struct run {
	size_t pieces;
	int (*fn)(void *arg, size_t piece, unsigned worker);
	void *arg;
	size_t next; /* next piece to claim (atomic) */
	int err;     /* first error (atomic) */
};

struct helper {
	struct run *run;
	unsigned worker;
};

static void work(struct run *r, unsigned worker)
{
	while (!__atomic_load_n(&r->err, __ATOMIC_RELAXED)) {
		size_t piece = __atomic_fetch_add(&r->next, 1, __ATOMIC_RELAXED);
		if (piece >= r->pieces)
			break;
		int err = r->fn(r->arg, piece, worker);
		if (err) {
			int none = 0;
			__atomic_compare_exchange_n(&r->err, &none, err, false, __ATOMIC_RELAXED,
						    __ATOMIC_RELAXED);
			break;
		}
	}
}

static void *helper_main(void *arg)
{
	struct helper *h = arg;
	work(h->run, h->worker);
	return NULL;
}

int umi_parallel(size_t pieces, int (*fn)(void *arg, size_t piece, unsigned worker), void *arg,
		 unsigned max_helpers)
{
	struct run r = { pieces, fn, arg, 0, 0 };
	size_t want = 0;
	if (max_helpers && pieces > 1) {
		long idle = umi_os_idle_cpus();
		want = idle > 0 ? (size_t)idle : 0;
		if (want > max_helpers)
			want = max_helpers;
		if (want > HELPERS_MAX)
			want = HELPERS_MAX;
		if (want > pieces - 1)
			want = pieces - 1;
	}
	pthread_t tids[HELPERS_MAX];
	struct helper hs[HELPERS_MAX];
	size_t started = 0;
	/* A helper that cannot start leaves its pieces to the others. */
	while (started < want) {
		hs[started] = (struct helper){ &r, (unsigned)started + 1 };
		if (pthread_create(&tids[started], NULL, helper_main, &hs[started]) != 0)
			break;
		started++;
	}
	work(&r, 0);
	for (size_t i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	return r.err;
}
