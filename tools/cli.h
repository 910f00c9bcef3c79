/* SPDX-License-Identifier: MIT */
/* The unimem command: what its files share. */
#ifndef UNIMEM_TOOLS_CLI_H
#define UNIMEM_TOOLS_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "json.h"

struct bench_options {
	bool quick;   /* a few seconds in all */
	bool json;    /* JSON on stdout instead of the tables */
	bool quiet;   /* no progress on stderr */
	const char *only; /* comma-separated groups to run (NULL: all) */
	char **argv;      /* the command line, to re-execute it */
};

/* `unimem bench`: returns the exit status. */
int cli_bench(const struct bench_options *o);

/* `unimem info`: returns the exit status. */
int cli_info(bool json);

/* The machine, for the reports: CPU model, online CPUs, kernel, date, load average. */
struct machine {
	char cpu[128];
	long cpus;
	char kernel[200];
	char date[64];
	double load1;
};
void cli_machine(struct machine *m);
void cli_machine_json(struct jw *w, const struct machine *m);

/* First line of a file, trimmed, in buf; false when it cannot be read. */
bool cli_read_line(const char *path, char *buf, size_t len);

/* The selected value of a sysfs choice ("always [madvise] never" -> "madvise"). */
bool cli_sysfs_choice(const char *path, char *buf, size_t len);

/* A malloc family loaded at run time (glibc's own is always there). */
struct allocator {
	const char *name;
	void *(*malloc_fn)(size_t);
	void (*free_fn)(void *);
	const char *note;   /* why it is absent, when it is */
	bool present;
	bool needs_static_tls; /* installed, but a dlopen needs more static TLS */
};
enum { ALLOC_GLIBC, ALLOC_JEMALLOC, ALLOC_MIMALLOC, ALLOC_TCMALLOC, ALLOC_COUNT };
/* Fills a[ALLOC_COUNT]; jemalloc, mimalloc and tcmalloc through dlopen when installed. */
void cli_allocators(struct allocator a[ALLOC_COUNT]);

/* jemalloc needs static TLS room for a late dlopen: when an allocator says so, execute
 * argv again (once, marked by REEXEC_MARK in the environment) with STATIC_TLS_TUNABLE
 * added to GLIBC_TUNABLES. Returns only when no exec happened (true: go on). */
#define REEXEC_MARK "UNIMEM_BENCH_STATIC_TLS"
#define STATIC_TLS_TUNABLE "glibc.rtld.optional_static_tls=16384"
bool cli_reexec_for_static_tls(struct allocator allocs[ALLOC_COUNT], char **argv);

#endif
