/* SPDX-License-Identifier: MIT */
/* `unimem bench`: every layer beside its rivals, measured in the same run.
 *
 * Method: each group warms up, then times several repetitions; within a repetition the
 * contenders run one after another in an order that rotates from one repetition to the
 * next, so that noise from the machine falls on all of them alike. Each figure is the
 * median of the repetitions, with min and max (and the quartiles in the JSON). Fast
 * operations are timed in batches (clock reads are ~20 ns), and compiler barriers keep
 * every result alive without adding instructions. Ratios are this row / the base row
 * of the same group, so they come from the same run.
 *
 * This file: the groups to run and cli_bench. The groups are in bench_block.c,
 * bench_tape.c and bench_grid.c, their results in results.c, the report in report.c.
 * Pass/fail targets are not here: bench/targets.py reads `unimem bench --json`. */
#define _GNU_SOURCE
#include <unimem/unimem.h>

#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Whether --only names this group (or there is no --only). */
static bool wanted(const char *name)
{
	if (!opt->only)
		return true;
	size_t n = strlen(name);
	for (const char *p = opt->only; *p;) {
		size_t len = strcspn(p, ",");
		if (len == n && !strncmp(p, name, n))
			return true;
		p += len;
		p += *p == ',';
	}
	return false;
}

int cli_bench(const struct bench_options *o)
{
	opt = o;
	static const char *const known[] = { "block", "tape", "threads", "clear", "grid",
					     "bandwidth" };
	for (const char *p = o->only ? o->only : ""; *p;) {
		size_t len = strcspn(p, ","), i = 0;
		while (i < 6 && !(strlen(known[i]) == len && !strncmp(p, known[i], len)))
			i++;
		if (i == 6) {
			fprintf(stderr, "unimem bench: unknown group '%.*s' (known: block, tape, "
				"threads, clear, grid, bandwidth)\n", (int)len, p);
			return 2;
		}
		p += len;
		p += *p == ',';
	}
	struct machine start, end;
	cli_allocators(allocs);
	if (!cli_reexec_for_static_tls(allocs, o->argv))
		return 1;
	cli_machine(&start);
	double t0 = umb_now_ns();
	bool q = o->quick;
	if (wanted("block")) {
		bench_block(16, q ? 5 : 15, 1);
		bench_block(256, q ? 3 : 7, q ? 0 : 1);
	}
	if (wanted("tape"))
		bench_tape(q ? 7 : 31, q ? 100 : 400);
	if (wanted("threads")) {
		/* 2 threads, then every CPU where there are more (the 16-core host). */
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		/* Runs of several ms (2000 x 1000 takes): shorter ones did not overlap on the
		 * 16-CPU VM (a vCPU that starts late by a millisecond misses a 0.6 ms run). */
		bench_threads(q ? 5 : 15, q ? 50 : 2000, 2);
		if (cpus > 2)
			bench_threads(q ? 5 : 15, q ? 50 : 2000, (int)cpus);
	}
	if (wanted("clear"))
		bench_clear(q ? 7 : 21, q ? 50000 : 250000);
	if (wanted("grid")) {
		bench_grid(q ? 5 : 15, q);
		bench_grid_procs(q ? 5 : 15, q);
	}
	if (wanted("bandwidth"))
		bench_bandwidth(q ? 128 : 256, q ? 4 : 12, q ? 2 : 4);
	double secs = (umb_now_ns() - t0) / 1e9;
	cli_machine(&end);
	if (o->json)
		report_json(&start, &end, secs);
	else
		report_text(&start, &end, secs);
	return fflush(stdout) == 0 ? 0 : 1;
}
