/* SPDX-License-Identifier: MIT */
/* The Grid groups' plugins: rivals built against a library that the installed command
 * must not need (DPDK), each a shared module exporting umb_grid_plugin(). Looked for in
 * $UNIMEM_BENCH_PLUGINS, beside the running command (the build tree), then where they are
 * installed. */
#define _GNU_SOURCE
#include "grid_candidates.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef UMB_PLUGIN_DIR
#define UMB_PLUGIN_DIR "/usr/local/lib/unimem"
#endif

static const char *const plugins[] = { "unimem-bench-dpdk.so", NULL };

static const struct grid_candidate *found[MAX_ROWS + 1];
static char why[512];

typedef const struct grid_candidate *const *plugin_fn(int abi);

static bool try_load(const char *dir, const char *file, int *n)
{
	char path[PATH_MAX];
	if (!dir || !*dir || snprintf(path, sizeof path, "%s/%s", dir, file) >= (int)sizeof path)
		return false;
	if (access(path, R_OK) != 0)
		return false;
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(why, sizeof why, "%.300s: %.200s", path, dlerror());
		return true; /* found but unusable: said so, look no further */
	}
	void *sym = dlsym(h, "umb_grid_plugin");
	plugin_fn *fn;
	memcpy(&fn, &sym, sizeof fn);
	const struct grid_candidate *const *list = fn ? fn(GRID_PLUGIN_ABI) : NULL;
	if (!list) {
		snprintf(why, sizeof why, "%.300s: not a plugin of this unimem", path);
		dlclose(h);
		return true;
	}
	for (; *list && *n < MAX_ROWS; list++)
		found[(*n)++] = *list;
	return true; /* kept loaded for the life of the process */
}

const struct grid_candidate *const *grid_plugin_candidates(const char **whyp)
{
	static bool done;
	if (!done) {
		done = true;
		char exe[PATH_MAX];
		ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
		exe[len > 0 ? len : 0] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash)
			*slash = '\0';
		int n = 0;
		snprintf(why, sizeof why, "DPDK rows: unimem-bench-dpdk.so not found (built where "
			 "dpdk-dev is installed)");
#ifdef UMB_SANITIZED
		snprintf(why, sizeof why, "DPDK rows: not loaded in a sanitizer build (DPDK's EAL "
			 "is not instrumented and crashes LeakSanitizer's exit scan)");
		found[0] = NULL;
		*whyp = why;
		return found;
#endif
		for (const char *const *p = plugins; *p; p++)
			if (!try_load(getenv("UNIMEM_BENCH_PLUGINS"), *p, &n) &&
			    !try_load(slash ? exe : NULL, *p, &n))
				try_load(UMB_PLUGIN_DIR, *p, &n);
		if (n)
			why[0] = '\0';
		found[n] = NULL;
	}
	*whyp = why[0] ? why : NULL;
	return found;
}
