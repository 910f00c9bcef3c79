/* SPDX-License-Identifier: MIT */
/* The malloc families `unimem bench` measures: glibc's own, and jemalloc, mimalloc and
 * tcmalloc loaded at run time where installed. */
#define _GNU_SOURCE
#include "cli.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *load_symbol(void *h, const char *name)
{
	return h ? dlsym(h, name) : NULL;
}

/* A malloc family that is installed: loaded privately (RTLD_LOCAL), so that it does not
 * replace this process's own malloc. */
static void load_allocator(struct allocator *a, const char *name, const char *const *libs,
			   const char *malloc_name, const char *free_name)
{
	a->name = name;
	a->present = false;
	a->note = "not installed";
	for (const char *const *l = libs; *l; l++) {
		void *h = dlopen(*l, RTLD_NOW | RTLD_LOCAL);
		if (!h) {
			/* jemalloc uses initial-exec TLS: a late dlopen needs static TLS room
			 * (see cli_reexec_for_static_tls). */
			const char *e = dlerror();
			if (e && strstr(e, "static TLS")) {
				a->note = "installed, but its TLS does not fit a dlopen (static TLS)";
				a->needs_static_tls = true;
			}
			continue;
		}
		void *m = load_symbol(h, malloc_name), *f = load_symbol(h, free_name);
		if (m && f) {
			/* dlsym gives data pointers; POSIX guarantees they convert. */
			memcpy(&a->malloc_fn, &m, sizeof m);
			memcpy(&a->free_fn, &f, sizeof f);
			a->present = true;
			a->note = *l;
			return; /* kept loaded for the life of the process */
		}
		a->note = "installed, but its malloc/free could not be found";
		dlclose(h);
	}
}

void cli_allocators(struct allocator a[ALLOC_COUNT])
{
	a[ALLOC_GLIBC] = (struct allocator){ "glibc malloc+free", malloc, free, "the C library's",
					     true, false };
	static const char *const je[] = { "libjemalloc.so.2", "libjemalloc.so", NULL };
	static const char *const mi[] = { "libmimalloc.so.2", "libmimalloc.so", NULL };
	static const char *const tc[] = { "libtcmalloc_minimal.so.4", "libtcmalloc.so.4",
					  "libtcmalloc_minimal.so", NULL };
	load_allocator(&a[ALLOC_JEMALLOC], "jemalloc malloc+free", je, "malloc", "free");
	load_allocator(&a[ALLOC_MIMALLOC], "mimalloc mi_malloc+mi_free", mi, "mi_malloc", "mi_free");
	load_allocator(&a[ALLOC_TCMALLOC], "tcmalloc tc_malloc+tc_free", tc, "tc_malloc", "tc_free");
}

/* jemalloc (initial-exec TLS) cannot be dlopen'ed late without static TLS room to spare:
 * run this command again with glibc's tunable for it, once. Returns false only when the
 * process should stop (never: a failed exec just goes on without that allocator). */
bool cli_reexec_for_static_tls(struct allocator allocs[ALLOC_COUNT], char **argv)
{
	bool need = false;
	for (int a = 0; a < ALLOC_COUNT; a++)
		need |= allocs[a].needs_static_tls;
	if (!need || !argv)
		return true;
	if (getenv(REEXEC_MARK)) {
		for (int a = 0; a < ALLOC_COUNT; a++)
			if (allocs[a].needs_static_tls)
				allocs[a].note = "installed, but its TLS did not fit a dlopen even "
						 "with " STATIC_TLS_TUNABLE;
		return true;
	}
	const char *old = getenv("GLIBC_TUNABLES");
	char tun[1024];
	snprintf(tun, sizeof tun, "%s%s%s", old ? old : "", old && *old ? ":" : "",
		 STATIC_TLS_TUNABLE);
	setenv("GLIBC_TUNABLES", tun, 1);
	setenv(REEXEC_MARK, "1", 1);
	fflush(NULL);
	execv("/proc/self/exe", argv);
	unsetenv(REEXEC_MARK); /* no exec: go on without it */
	return true;
}

