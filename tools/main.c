/* SPDX-License-Identifier: MIT */
/* The unimem command: `unimem info` (what this machine offers unimem) and
 * `unimem bench` (every layer beside its rivals, measured in the same run). */
#include <unimem/unimem.h>

#include "cli.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
	fprintf(f,
		"usage: unimem <command> [options]\n"
		"\n"
		"commands:\n"
		"  info [--json]                   what this machine offers unimem: backend, page and\n"
		"                                  huge page sizes, locked-memory limit, GPUs, the\n"
		"                                  pool and block types of this build, the version\n"
		"  bench [--quick] [--json] [-q] [--only GROUPS]\n"
		"                                  every layer beside its rivals, measured in one run\n"
		"                                  (--quick: a few seconds; -q: no progress on stderr;\n"
		"                                  --only block,tape,threads,clear,grid,bandwidth)\n"
		"  version                         the library version\n"
		"  help                            this text\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		printf("%s\n", unimem_version());
		return 0;
	}
	if (!strcmp(cmd, "info")) {
		bool json = false;
		for (int i = 2; i < argc; i++) {
			if (!strcmp(argv[i], "--json")) {
				json = true;
			} else {
				fprintf(stderr, "unimem info: unknown option '%s'\n", argv[i]);
				usage(stderr);
				return 2;
			}
		}
		return cli_info(json);
	}
	if (!strcmp(cmd, "bench")) {
		struct bench_options o = { false, false, false, NULL, argv };
		for (int i = 2; i < argc; i++) {
			if (!strcmp(argv[i], "--quick"))
				o.quick = true;
			else if (!strcmp(argv[i], "--json"))
				o.json = true;
			else if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet"))
				o.quiet = true;
			else if (!strcmp(argv[i], "--only") && i + 1 < argc)
				o.only = argv[++i];
			else {
				fprintf(stderr, "unimem bench: unknown option '%s'\n", argv[i]);
				usage(stderr);
				return 2;
			}
		}
		return cli_bench(&o);
	}
	fprintf(stderr, "unimem: unknown command '%s'\n", cmd);
	usage(stderr);
	return 2;
}
