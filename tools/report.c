/* SPDX-License-Identifier: MIT */
/* `unimem bench` report: the groups as text tables on stdout, or as one JSON object. */
#include <unimem/unimem.h>

#include "bench.h"

#include <math.h>
#include <stdio.h>

static void fmt_num(char *buf, size_t len, double v)
{
	if (!isfinite(v))
		snprintf(buf, len, "-");
	else if (v >= 100)
		snprintf(buf, len, "%.0f", v);
	else if (v >= 10)
		snprintf(buf, len, "%.1f", v);
	else if (v >= 1)
		snprintf(buf, len, "%.2f", v);
	else
		snprintf(buf, len, "%.3f", v);
}

static void print_group(const struct group *g)
{
	int n = 0;
	for (int i = 0; i < g->nrows && !n; i++)
		n = g->rows[i].skipped ? 0 : g->rows[i].m[0].n;
	printf("\n%s  [%s; median (min..max) of %d]\n", g->title, g->unit, n);
	if (g->note[0])
		printf("  %s\n", g->note);
	if (g->skipped)
		return;
	printf("  %-42s", "");
	for (int m = 0; m < g->nmetric; m++)
		printf("%-24s", g->metric[m]);
	if (g->base >= 0)
		for (int m = 0; m < g->nmetric; m++)
			printf(" ratio %-8s", g->nmetric > 1 ? g->metric[m] : "");
	printf("\n");
	for (int i = 0; i < g->nrows; i++) {
		const struct row *r = &g->rows[i];
		printf("  %-42s", r->name);
		if (r->skipped) {
			printf("%s\n", r->note);
			continue;
		}
		for (int m = 0; m < g->nmetric; m++) {
			char a[32], b[32], c[32], cell[100];
			fmt_num(a, sizeof a, r->m[m].median);
			fmt_num(b, sizeof b, r->m[m].min);
			fmt_num(c, sizeof c, r->m[m].max);
			snprintf(cell, sizeof cell, "%s (%s..%s)", a, b, c);
			printf("%-24s", cell);
		}
		if (g->base >= 0)
			for (int m = 0; m < g->nmetric; m++) {
				double x = ratio(g, i, m);
				if (isfinite(x))
					printf(" %6.2fx%7s", x, "");
				else
					printf(" %6s %7s", "-", "");
			}
		if (r->note[0])
			printf("  %s", r->note);
		printf("\n");
	}
}

void report_text(const struct machine *mach, const struct machine *end, double secs)
{
	printf("unimem %s bench%s\n", unimem_version(), opt->quick ? " --quick" : "");
	printf("machine: %s, %ld CPUs, %s\n", mach->cpu, mach->cpus, mach->kernel);
	printf("date: %s; load average %.2f at start, %.2f at end; %.1f s\n", mach->date,
	       mach->load1, end->load1, secs);
#ifndef __OPTIMIZE__
	printf("WARNING: this unimem was built without optimisation: the numbers mean little\n");
#endif
	printf("method: warm-up, then the median of the repetitions with (min..max); "
	       "contenders interleaved in a rotating order; ratios from this run.\n");
	for (int i = 0; i < ngroups; i++)
		print_group(&groups[i]);
}

static void stats_json(struct jw *w, const char *key, const struct umb_stats *s)
{
	jw_object(w, key);
	jw_num(w, "median", s->median);
	jw_num(w, "min", s->min);
	jw_num(w, "max", s->max);
	jw_num(w, "q1", s->q1);
	jw_num(w, "q3", s->q3);
	jw_int(w, "n", s->n);
	jw_object_end(w);
}

void report_json(const struct machine *mach, const struct machine *end, double secs)
{
	struct jw w;
	jw_init(&w, stdout);
	jw_object(&w, NULL);
	jw_str(&w, "tool", "unimem bench");
	jw_str(&w, "version", unimem_version());
	jw_str(&w, "mode", opt->quick ? "quick" : "full");
	cli_machine_json(&w, mach);
	jw_num(&w, "load_average_1min_at_end", end->load1);
	jw_num(&w, "seconds", secs);
	jw_str(&w, "method",
	       "warm-up, then the median of the repetitions with min/max and quartiles; "
	       "contenders interleaved in a rotating order within each repetition; "
	       "ratio = row median / base row median of the same group and run");
	jw_array(&w, "groups");
	for (int i = 0; i < ngroups; i++) {
		const struct group *g = &groups[i];
		jw_object(&w, NULL);
		jw_str(&w, "id", g->id);
		jw_str(&w, "title", g->title);
		jw_str(&w, "unit", g->unit);
		jw_bool(&w, "higher_is_better", g->higher_better);
		jw_str(&w, "note", g->note);
		jw_bool(&w, "skipped", g->skipped);
		if (g->base >= 0)
			jw_str(&w, "base", g->rows[g->base].name);
		else
			jw_null(&w, "base");
		jw_array(&w, "rows");
		for (int k = 0; k < g->nrows && !g->skipped; k++) {
			const struct row *r = &g->rows[k];
			jw_object(&w, NULL);
			jw_str(&w, "name", r->name);
			jw_bool(&w, "skipped", r->skipped);
			if (r->note[0])
				jw_str(&w, "note", r->note);
			if (!r->skipped) {
				jw_object(&w, "metrics");
				for (int m = 0; m < g->nmetric; m++)
					stats_json(&w, g->metric[m], &r->m[m]);
				jw_object_end(&w);
				if (g->base >= 0) {
					jw_object(&w, "ratio");
					for (int m = 0; m < g->nmetric; m++)
						jw_num(&w, g->metric[m], ratio(g, k, m));
					jw_object_end(&w);
				}
			}
			jw_object_end(&w);
		}
		jw_array_end(&w);
		jw_object_end(&w);
	}
	jw_array_end(&w);
	jw_object_end(&w);
}

