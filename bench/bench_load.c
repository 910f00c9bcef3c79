/* SPDX-License-Identifier: MIT */
/* Loading a large file into pinned memory (issue 10), all in one run:
 *
 *   raw read     read() of the file into one reused 1 MiB buffer (dd bs=1M of=/dev/null):
 *                the sequential read speed of the file, the yardstick
 *   raw big      read() of the whole file into one buffer of its size, allocated and
 *                faulted in once: the same reading, with the bytes landing in memory
 *                as a loader's must (a 1 MiB buffer stays in the CPU's caches)
 *   raw direct   O_DIRECT read() into one reused 16 MiB buffer: the device alone
 *   unimem       unimem_tape_read_file() into a pinned Tape: pages in the page cache
 *                with pread, the others with O_DIRECT straight into the Tape
 *   unimem pread unimem_tape_read_file(UNIMEM_READ_BUFFERED)
 *   unimem dio   unimem_tape_read_file(UNIMEM_READ_DIRECT)
 *   malloc+copy  malloc(size), read() into it, memcpy into the pinned Block, free: the
 *                way frameworks fill a pinned buffer
 *   mmap touch   mmap the file and read one byte of every page (the data then sits in the
 *                page cache, not in a pinned Block: a GPU cannot register it)
 *   mmap+copy    mmap the file and memcpy it into the pinned Block
 *
 * Cold: before each timed load the file's pages are dropped from the page cache, with
 * `echo 3 > /proc/sys/vm/drop_caches` where this process may write it, else with
 * posix_fadvise(POSIX_FADV_DONTNEED) on the file (which drops this file's clean pages;
 * a hypervisor's cache under a virtual disk stays). Warm: the file is read once and every
 * page checked resident (mincore) before the round. Contenders alternate within each
 * round; the median of the rounds is reported, with min and max.
 *
 * Usage: bench_load [--mib N] [--rounds N] [--file PATH] [--keep] [--warm-only]
 *                   [--safetensors] (see bench_safetensors())
 * The file defaults to $UNIMEM_BENCH_DIR (else the current directory)/unimem-bench-load.bin
 * and is removed at the end unless --keep. The pinned Block needs N MiB of locked memory
 * (root, or RLIMIT_MEMLOCK). */
#define _GNU_SOURCE
#include <unimem/unimem.h>

#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum { RAW, RAW_BIG, RAW_DIRECT, UNIMEM, UNIMEM_PREAD, UNIMEM_DIO, MALLOC_COPY, MMAP_TOUCH, MMAP_COPY,
       NMETHODS };
static const char *names[NMETHODS] = {"raw read (1 MiB buffer)", "raw read (file-size buf)",
				      "raw O_DIRECT (16 MiB)",
				      "unimem (default)", "unimem pread only",
				      "unimem O_DIRECT only", "malloc + read + copy",
				      "mmap, touch every page", "mmap + copy into Block"};

static size_t size;
static const char *path;
static unimem_tape *tape;
static unsigned char *block_mem;
static bool drop_all; /* /proc/sys/vm/drop_caches is writable */

static void die(const char *what, int err)
{
	fprintf(stderr, "bench_load: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

/* Word i of the file: cheap to make and to check. */
static uint64_t word(uint64_t i)
{
	uint64_t x = i * 0x9e3779b97f4a7c15ull;
	return x ^ (x >> 29);
}

static void make_file(void)
{
	struct stat st;
	if (stat(path, &st) == 0 && (size_t)st.st_size == size)
		return;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		die(path, errno);
	size_t chunk = 8 << 20;
	uint64_t *buf = malloc(chunk);
	for (size_t off = 0; off < size; off += chunk) {
		size_t n = size - off < chunk ? size - off : chunk;
		for (size_t i = 0; i < n / 8; i++)
			buf[i] = word(off / 8 + i);
		if (write(fd, buf, n) != (ssize_t)n)
			die("write", errno);
	}
	free(buf);
	if (fsync(fd) != 0)
		die("fsync", errno);
	close(fd);
}

/* Spot checks: 64 words spread over the file. */
static void check(const unsigned char *p, const char *who)
{
	for (int k = 0; k < 64; k++) {
		uint64_t i = (uint64_t)k * (size / 8 - 1) / 63, v;
		memcpy(&v, p + i * 8, 8);
		if (v != word(i)) {
			fprintf(stderr, "bench_load: %s loaded wrong data at word %llu\n", who,
				(unsigned long long)i);
			exit(1);
		}
	}
}

static size_t resident_pages(void)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	void *m = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	size_t pages = (size + 4095) / 4096, n = 0;
	unsigned char *vec = malloc(pages);
	if (m == MAP_FAILED || !vec || mincore(m, size, vec) != 0)
		die("mincore", errno);
	for (size_t i = 0; i < pages; i++)
		n += vec[i] & 1;
	free(vec);
	munmap(m, size);
	close(fd);
	return n;
}

static void make_cold(void)
{
	sync();
	if (drop_all) {
		int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
		if (fd >= 0 && write(fd, "3\n", 2) == 2) {
			close(fd);
			return;
		}
		if (fd >= 0)
			close(fd);
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	close(fd);
}

static void make_warm(void)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	static unsigned char buf[1 << 20];
	while (read(fd, buf, sizeof buf) > 0)
		;
	close(fd);
}

static double load(int method)
{
	double t0 = umb_now_ns();
	int fd;
	void *out;
	int err;
	switch (method) {
	case RAW: {
		static unsigned char buf[1 << 20];
		fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n;
		size_t total = 0;
		while ((n = read(fd, buf, sizeof buf)) > 0)
			total += (size_t)n;
		close(fd);
		if (total != size)
			die("raw read", EIO);
		break;
	}
	case RAW_BIG: {
		static unsigned char *buf;
		if (!buf) {
			buf = malloc(size);
			if (!buf)
				die("malloc", ENOMEM);
			memset(buf, 1, size);
		}
		t0 = umb_now_ns();
		fd = open(path, O_RDONLY | O_CLOEXEC);
		size_t total = 0;
		ssize_t n;
		while (total < size && (n = read(fd, buf + total, size - total)) > 0)
			total += (size_t)n;
		close(fd);
		double t1 = umb_now_ns();
		check(buf, names[method]);
		return (t1 - t0) / 1e9;
	}
	case RAW_DIRECT: {
		static unsigned char *buf;
		if (!buf && posix_memalign((void **)&buf, 4096, 16 << 20))
			die("posix_memalign", ENOMEM);
		t0 = umb_now_ns();
		fd = open(path, O_RDONLY | O_CLOEXEC | O_DIRECT);
		if (fd < 0)
			return -1;
		ssize_t n;
		size_t total = 0;
		while ((n = read(fd, buf, 16 << 20)) > 0)
			total += (size_t)n;
		close(fd);
		if (total != size)
			return -1;
		break;
	}
	case UNIMEM:
	case UNIMEM_PREAD:
	case UNIMEM_DIO: {
		unsigned flags = method == UNIMEM_PREAD ? UNIMEM_READ_BUFFERED
				 : method == UNIMEM_DIO ? UNIMEM_READ_DIRECT : 0;
		unimem_tape_clear(tape);
		err = unimem_tape_read_file(tape, path, flags, &out, NULL);
		if (err == -EOPNOTSUPP)
			return -1;
		if (err)
			die("unimem_tape_read_file", err);
		double t1 = umb_now_ns();
		check(out, names[method]);
		return (t1 - t0) / 1e9;
	}
	case MALLOC_COPY: {
		unsigned char *buf = malloc(size);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		size_t total = 0;
		ssize_t n;
		while (total < size && (n = read(fd, buf + total, size - total)) > 0)
			total += (size_t)n;
		close(fd);
		memcpy(block_mem, buf, size);
		free(buf);
		double t1 = umb_now_ns();
		check(block_mem, names[method]);
		return (t1 - t0) / 1e9;
	}
	case MMAP_TOUCH:
	case MMAP_COPY: {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		const unsigned char *m = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
		close(fd);
		if (m == MAP_FAILED)
			die("mmap", errno);
		if (method == MMAP_TOUCH) {
			unsigned sum = 0;
			for (size_t i = 0; i < size; i += 4096)
				sum += m[i];
			UMB_USE(sum);
		} else {
			memcpy(block_mem, m, size);
		}
		double t1 = umb_now_ns();
		check(method == MMAP_TOUCH ? m : block_mem, names[method]);
		munmap((void *)m, size);
		return (t1 - t0) / 1e9;
	}
	}
	return (umb_now_ns() - t0) / 1e9;
}

/* --safetensors (issue 13): a checkpoint-like file (4 MiB bf16 tensors and 8 KiB norms,
 * every tensor at a 256-aligned offset of the data, as real checkpoints), its header
 * padded so that the data starts at 8 mod 16 (as the safetensors library writes), loaded
 * with align 1 (the file-offset placement, what align 0 did before) and align 0 (every
 * tensor 256-aligned), alternating, cold and warm. */
static int bench_safetensors(size_t mib, int rounds)
{
	size_t nbig = mib / 4 ? mib / 4 : 1, n = 2 * nbig, at = 0, cap = 128 * n + 64;
	char *hdr = malloc(cap);
	if (!hdr)
		die("malloc", ENOMEM);
	size_t w = (size_t)snprintf(hdr, cap, "{");
	for (size_t i = 0; i < n; i++) {
		size_t bytes = i % 2 ? (size_t)4 << 20 : 8192;
		w += (size_t)snprintf(hdr + w, cap - w,
				      "%s\"t%zu\":{\"dtype\":\"BF16\",\"shape\":[%zu],"
				      "\"data_offsets\":[%zu,%zu]}",
				      i ? "," : "", i, bytes / 2, at, at + bytes);
		at += bytes;
	}
	hdr[w++] = '}';
	size_t hlen = (w + 15) & ~(size_t)15; /* 8 + hlen = 8 mod 16 */
	memset(hdr + w, ' ', hlen - w);
	size = 8 + hlen + at;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		die(path, errno);
	unsigned char len8[8];
	for (int i = 0; i < 8; i++)
		len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
	if (write(fd, len8, 8) != 8 || write(fd, hdr, hlen) != (ssize_t)hlen)
		die("write", errno);
	size_t chunk = 8 << 20;
	uint64_t *buf = malloc(chunk);
	for (size_t off = 0; off < at; off += chunk) {
		size_t k = at - off < chunk ? at - off : chunk;
		for (size_t i = 0; i < k / 8; i++)
			buf[i] = word(off / 8 + i);
		if (write(fd, buf, k) != (ssize_t)k)
			die("write", errno);
	}
	free(buf);
	free(hdr);
	if (fsync(fd) != 0)
		die("fsync", errno);
	close(fd);
	int err = unimem_tape_start(&tape, size + (8 << 20));
	if (err)
		die("unimem_tape_start", err);
	printf("# bench_load --safetensors: %zu tensors, %.0f MiB, data at %zu (mod 16: %zu), "
	       "%d rounds, cold by %s\n", n, at / 1048576.0, 8 + hlen, (8 + hlen) % 16, rounds,
	       drop_all ? "drop_caches" : "posix_fadvise(DONTNEED)");
	static const size_t aligns[2] = {1, 0};
	static const char *what[2] = {"align 1 (file placement)", "align 0 (256, default)"};
	double samples[2][2][50];
	for (int phase = 0; phase < 2; phase++)
		for (int r = 0; r < rounds; r++)
			for (int k = 0; k < 2; k++) {
				int m = (k + r) % 2;
				if (phase == 0)
					make_cold();
				else
					make_warm();
				unimem_tape_clear(tape);
				unimem_safetensors *st;
				double t0 = umb_now_ns();
				err = unimem_safetensors_load(&st, tape, path, aligns[m], 0);
				double s = (umb_now_ns() - t0) / 1e9;
				if (err)
					die("unimem_safetensors_load", err);
				const unsigned char *p = unimem_view_ptr(unimem_safetensors_view(st, 1));
				uint64_t v;
				memcpy(&v, p, 8);
				if (v != word(8192 / 8) || (m == 1 && (uintptr_t)p % 256))
					die("a tensor loaded wrong or misaligned", EIO);
				samples[phase][m][r] = s;
				unimem_safetensors_close(st);
			}
	printf("%-26s %22s %22s\n", "", "cold s (min-max)", "warm s (min-max)");
	struct umb_stats st[2][2];
	for (int m = 0; m < 2; m++) {
		for (int p = 0; p < 2; p++)
			st[p][m] = umb_stats_of(samples[p][m], rounds);
		printf("%-26s %8.3f (%.3f-%.3f) %8.3f (%.3f-%.3f)\n", what[m], st[0][m].median,
		       st[0][m].min, st[0][m].max, st[1][m].median, st[1][m].min, st[1][m].max);
	}
	printf("%-26s %22.3f %22.3f\n", "ratio default / align 1", st[0][1].median / st[0][0].median,
	       st[1][1].median / st[1][0].median);
	unimem_tape_close(tape);
	unlink(path);
	return 0;
}

int main(int argc, char **argv)
{
	size_t mib = 1024;
	int rounds = 5;
	bool keep = false, warm_only = false, safetensors = false;
	char defpath[4096];
	path = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--mib") && i + 1 < argc)
			mib = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--file") && i + 1 < argc)
			path = argv[++i];
		else if (!strcmp(argv[i], "--keep"))
			keep = true;
		else if (!strcmp(argv[i], "--warm-only"))
			warm_only = true;
		else if (!strcmp(argv[i], "--safetensors"))
			safetensors = true;
		else {
			fprintf(stderr, "usage: bench_load [--mib N] [--rounds N] [--file PATH] "
					"[--keep] [--warm-only] [--safetensors]\n");
			return 2;
		}
	}
	if (rounds < 1 || rounds > 50 || mib == 0)
		return 2;
	size = mib << 20;
	if (!path) {
		const char *d = getenv("UNIMEM_BENCH_DIR");
		snprintf(defpath, sizeof defpath, "%s/unimem-bench-load.bin", d && *d ? d : ".");
		path = defpath;
	}
	drop_all = access("/proc/sys/vm/drop_caches", W_OK) == 0;
	if (safetensors)
		return bench_safetensors(mib, rounds);
	make_file();
	int err = unimem_tape_start(&tape, size);
	if (err)
		die("unimem_tape_start (a pinned Block of the file's size)", err);
	block_mem = unimem_block_ptr(unimem_tape_block(tape));

	printf("# bench_load: %zu MiB file %s, %d rounds, cold by %s\n", mib, path, rounds,
	       warm_only ? "(skipped)" : drop_all ? "drop_caches" : "posix_fadvise(DONTNEED)");
	printf("%-26s %16s %16s %12s %12s\n", "", "cold GB/s", "warm GB/s", "cold x raw",
	       "warm x raw");
	double samples[2][NMETHODS][50];
	int ok[2][NMETHODS] = {{0}};
	for (int phase = warm_only ? 1 : 0; phase < 2; phase++) {
		for (int r = 0; r < rounds; r++) {
			for (int k = 0; k < NMETHODS; k++) {
				/* Rotate the order each round: no method always goes first. */
				int m = (k + r) % NMETHODS;
				if (phase == 0) {
					make_cold();
				} else {
					make_warm();
					if (resident_pages() != (size + 4095) / 4096)
						fprintf(stderr, "# warm: not every page cached\n");
				}
				double s = load(m);
				if (s > 0)
					samples[phase][m][ok[phase][m]++] = (double)size / s / 1e9;
			}
		}
	}
	struct umb_stats st[2][NMETHODS];
	for (int p = 0; p < 2; p++)
		for (int m = 0; m < NMETHODS; m++)
			st[p][m] = umb_stats_of(samples[p][m], ok[p][m]);
	for (int m = 0; m < NMETHODS; m++) {
		char c[32] = "-", w[32] = "-", cr[16] = "-", wr[16] = "-";
		if (ok[0][m]) {
			snprintf(c, sizeof c, "%.2f (%.2f-%.2f)", st[0][m].median, st[0][m].min,
				 st[0][m].max);
			snprintf(cr, sizeof cr, "%.2f", st[0][m].median / st[0][RAW].median);
		}
		if (ok[1][m]) {
			snprintf(w, sizeof w, "%.2f (%.2f-%.2f)", st[1][m].median, st[1][m].min,
				 st[1][m].max);
			snprintf(wr, sizeof wr, "%.2f", st[1][m].median / st[1][RAW].median);
		}
		printf("%-26s %16s %16s %12s %12s\n", names[m], c, w, cr, wr);
	}
	unimem_tape_close(tape);
	if (!keep)
		unlink(path);
	return 0;
}
