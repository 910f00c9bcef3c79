/* SPDX-License-Identifier: MIT */
/* `unimem info`: what this machine offers unimem (backend, page and huge page sizes,
 * locked-memory limit, GPUs, the pool and block types of this build, the version). */
#define _GNU_SOURCE
#include <unimem/unimem.h>

#include "cli.h"
#include "harness.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* A "Key: value" line of a /proc file, as a number (kB for meminfo); -1 if absent. */
static long long proc_field(const char *path, const char *key)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	char line[256];
	long long v = -1;
	size_t n = strlen(key);
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, key, n) && line[n] == ':') {
			v = strtoll(line + n + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

struct info {
	struct machine m;
	const char *backend;
	long page;
	/* huge pages */
	long long hugetlb_total, hugetlb_free, hugetlb_kb;
	char thp[64], thp_shmem[64];
	bool shmem_huge_off;
	long huge_block_page;   /* page size granted to a UNIMEM_BLOCK_HUGE Block; 0: failed */
	int huge_block_err;
	/* pinning */
	bool memlock_known;
	unsigned long long memlock_cur, memlock_max;
	bool memlock_cur_inf, memlock_max_inf;
	bool cap_ipc_lock;
	int pin_err;
	double pin_ms;
	/* GPU */
	bool cuda_driver;
	int gpus;
};

static bool has_cap_ipc_lock(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	if (!f)
		return false;
	char line[256];
	unsigned long long caps = 0;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "CapEff:", 7)) {
			caps = strtoull(line + 7, NULL, 16);
			break;
		}
	fclose(f);
	return (caps >> 14) & 1; /* CAP_IPC_LOCK */
}

static void gather_info(struct info *in)
{
	memset(in, 0, sizeof *in);
	cli_machine(&in->m);
#if defined(__APPLE__)
	in->backend = "macOS IOSurface (locked at open)";
#elif defined(__linux__)
	in->backend = "Linux memfd (sealed, MAP_SHARED), pinned with mlock";
#else
	in->backend = "unknown";
#endif
	in->page = sysconf(_SC_PAGESIZE);

	in->hugetlb_total = proc_field("/proc/meminfo", "HugePages_Total");
	in->hugetlb_free = proc_field("/proc/meminfo", "HugePages_Free");
	in->hugetlb_kb = proc_field("/proc/meminfo", "Hugepagesize");
	if (!cli_sysfs_choice("/sys/kernel/mm/transparent_hugepage/enabled", in->thp, sizeof in->thp))
		snprintf(in->thp, sizeof in->thp, "unavailable");
	if (!cli_sysfs_choice("/sys/kernel/mm/transparent_hugepage/shmem_enabled", in->thp_shmem,
			      sizeof in->thp_shmem))
		snprintf(in->thp_shmem, sizeof in->thp_shmem, "unavailable");
	in->shmem_huge_off = !strcmp(in->thp_shmem, "never") || !strcmp(in->thp_shmem, "deny") ||
			     !strcmp(in->thp_shmem, "unavailable");

	/* Try it: what page size does a huge Block get here? (Lazy: nothing is faulted.) */
	unimem_block *b = NULL;
	in->huge_block_err = unimem_block_open(&b, 2u << 20, UNIMEM_BLOCK_HUGE | UNIMEM_BLOCK_UNPINNED);
	in->huge_block_page = b ? (long)unimem_block_page_size(b) : 0;
	unimem_block_close(b);

	struct rlimit rl;
	if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0) {
		in->memlock_known = true;
		in->memlock_cur_inf = rl.rlim_cur == RLIM_INFINITY;
		in->memlock_max_inf = rl.rlim_max == RLIM_INFINITY;
		in->memlock_cur = (unsigned long long)rl.rlim_cur;
		in->memlock_max = (unsigned long long)rl.rlim_max;
	}
	in->cap_ipc_lock = has_cap_ipc_lock();
	double t0 = umb_now_ns();
	in->pin_err = unimem_block_open(&b, 16u << 20, 0);
	in->pin_ms = (umb_now_ns() - t0) / 1e6;
	unimem_block_close(b);

	void *cuda = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
	in->cuda_driver = cuda != NULL;
	if (cuda)
		dlclose(cuda);
	in->gpus = unimem_gpu_count();
}

static void limit_text(char *buf, size_t len, bool inf, unsigned long long v)
{
	if (inf)
		snprintf(buf, len, "unlimited");
	else if (v >= (1ull << 20) && v % (1ull << 20) == 0)
		snprintf(buf, len, "%llu MiB", v >> 20);
	else if (v >= 1024 && v % 1024 == 0)
		snprintf(buf, len, "%llu KiB", v >> 10);
	else
		snprintf(buf, len, "%llu bytes", v);
}

/* Whether anonymous memory (a private Block) may get transparent huge pages here. */
static bool anon_thp(const struct info *in)
{
	return !strcmp(in->thp, "always") || !strcmp(in->thp, "madvise");
}

static void print_info(const struct info *in)
{
	char cur[48], max[48];
	printf("unimem %s\n", unimem_version());
	printf("  machine          %s, %ld CPUs, %s\n", in->m.cpu, in->m.cpus, in->m.kernel);
	printf("  backend          %s\n", in->backend);
	printf("  page size        %ld bytes\n", in->page);
	printf("  huge pages       hugetlb pool: %lld of %lld free (%lld KiB pages)%s\n",
	       in->hugetlb_free < 0 ? 0 : in->hugetlb_free,
	       in->hugetlb_total < 0 ? 0 : in->hugetlb_total, in->hugetlb_kb < 0 ? 0 : in->hugetlb_kb,
	       in->hugetlb_total > 0 ? "" : " (empty: no hugetlb Blocks)");
	printf("                   transparent huge pages: anonymous [%s], shmem [%s]%s\n", in->thp,
	       in->thp_shmem,
	       in->shmem_huge_off ? "\n                   shmem huge pages are OFF: memfd Blocks get "
				    "normal pages (UNIMEM_BLOCK_HUGE falls back)" : "");
	if (anon_thp(in))
		printf("                   a UNIMEM_BLOCK_PRIVATE | UNIMEM_BLOCK_HUGE Block gets "
		       "transparent huge pages here (anonymous [%s])\n", in->thp);
	if (in->huge_block_page > in->page)
		printf("                   a UNIMEM_BLOCK_HUGE Block gets %ld-byte pages here (hugetlb)\n",
		       in->huge_block_page);
	else if (in->huge_block_page && !in->shmem_huge_off)
		printf("                   a UNIMEM_BLOCK_HUGE Block gets transparent huge pages here "
		       "(shmem [%s]; its page size still reads %ld)\n", in->thp_shmem, in->page);
	else if (in->huge_block_page)
		printf("                   a UNIMEM_BLOCK_HUGE Block gets %ld-byte pages here; for 2 MiB "
		       "pages (a large Block opens\n                   several times faster): "
		       "echo advise > /sys/kernel/mm/transparent_hugepage/shmem_enabled,\n"
		       "                   or reserve hugetlb pages (vm.nr_hugepages)%s\n",
		       in->huge_block_page,
		       anon_thp(in) ? ", or open it with UNIMEM_BLOCK_PRIVATE\n"
				      "                   (anonymous memory: huge pages as the machine is)"
				    : "");
	else
		printf("                   a UNIMEM_BLOCK_HUGE Block could not be opened: %s\n",
		       unimem_strerror(in->huge_block_err));
	if (in->memlock_known) {
		limit_text(cur, sizeof cur, in->memlock_cur_inf, in->memlock_cur);
		limit_text(max, sizeof max, in->memlock_max_inf, in->memlock_max);
		printf("  RLIMIT_MEMLOCK   %s (hard %s)%s\n", cur, max,
		       in->cap_ipc_lock ? "; CAP_IPC_LOCK held: the limit does not bind" : "");
	} else {
		printf("  RLIMIT_MEMLOCK   unknown\n");
	}
	if (in->pin_err == 0)
		printf("  pinning          a default (pinned) 16 MiB Block opens: yes, in %.2f ms\n",
		       in->pin_ms);
	else
		printf("  pinning          a default (pinned) 16 MiB Block opens: NO: %s\n",
		       unimem_strerror(in->pin_err));
	printf("  GPU              CUDA driver (libcuda.so.1): %s; GPUs usable by unimem: %d\n",
	       in->cuda_driver ? "present" : "absent", in->gpus);
	printf("  pool types       %s\n", UNIMEM_GRIDS[0] ? UNIMEM_GRIDS : "(none)");
	printf("  block types      %s\n", UNIMEM_BLOCK_TYPES[0] ? UNIMEM_BLOCK_TYPES : "(none)");
	printf("  version          %s\n", unimem_version());
}

static void list_json(struct jw *w, const char *key, const char *spaced)
{
	jw_array(w, key);
	const char *p = spaced;
	while (*p) {
		size_t n = strcspn(p, " ");
		if (n) {
			char item[128];
			snprintf(item, sizeof item, "%.*s", (int)n, p);
			jw_str(w, NULL, item);
		}
		p += n;
		p += strspn(p, " ");
	}
	jw_array_end(w);
}

static void print_info_json(const struct info *in)
{
	struct jw w;
	jw_init(&w, stdout);
	jw_object(&w, NULL);
	jw_str(&w, "version", unimem_version());
	cli_machine_json(&w, &in->m);
	jw_str(&w, "backend", in->backend);
	jw_int(&w, "page_size", in->page);
	jw_object(&w, "huge_pages");
	jw_int(&w, "hugetlb_total", in->hugetlb_total);
	jw_int(&w, "hugetlb_free", in->hugetlb_free);
	jw_int(&w, "hugetlb_page_kib", in->hugetlb_kb);
	jw_str(&w, "thp_anonymous", in->thp);
	jw_str(&w, "thp_shmem", in->thp_shmem);
	jw_bool(&w, "shmem_huge_pages_off", in->shmem_huge_off);
	jw_int(&w, "huge_block_page_size", in->huge_block_page);
	jw_object_end(&w);
	jw_object(&w, "memlock");
	if (in->memlock_known && !in->memlock_cur_inf)
		jw_int(&w, "limit", (long long)in->memlock_cur);
	else
		jw_null(&w, "limit");
	if (in->memlock_known && !in->memlock_max_inf)
		jw_int(&w, "hard_limit", (long long)in->memlock_max);
	else
		jw_null(&w, "hard_limit");
	jw_bool(&w, "cap_ipc_lock", in->cap_ipc_lock);
	jw_bool(&w, "default_16mib_block_pins", in->pin_err == 0);
	if (in->pin_err == 0)
		jw_num(&w, "pinned_16mib_open_ms", in->pin_ms);
	else
		jw_str(&w, "pin_error", unimem_strerror(in->pin_err));
	jw_object_end(&w);
	jw_object(&w, "gpu");
	jw_bool(&w, "cuda_driver", in->cuda_driver);
	jw_int(&w, "count", in->gpus);
	jw_object_end(&w);
	list_json(&w, "pool_types", UNIMEM_GRIDS);
	list_json(&w, "block_types", UNIMEM_BLOCK_TYPES);
	jw_object_end(&w);
}

int cli_info(bool json)
{
	struct info in;
	gather_info(&in);
	if (json)
		print_info_json(&in);
	else
		print_info(&in);
	return fflush(stdout) == 0 ? 0 : 1;
}

