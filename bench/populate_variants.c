/* SPDX-License-Identifier: MIT */
/* Experiment behind src/block_linux.c's fill: ways to open a pinned (resident, locked,
 * zeroed) memfd mapping, beside anonymous mmap + MAP_POPULATE + mlock, in one process,
 * interleaved. Prints open and close medians (min..max) and ratios to the anchor.
 *
 *   cc -O2 -pthread -Ibench bench/populate_variants.c -o /tmp/pv && /tmp/pv 16 31
 *
 * Not built by Meson: a tool for the record in docs/BENCHMARKS.md. Needs Linux >= 5.14. */
#define _GNU_SOURCE
#include "harness.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23
#endif

#define CHUNK ((size_t)512 << 10)
#define MAX_REPS 101

static unsigned char zeros[1 << 16];

static void write_zeros(int fd, size_t off, size_t len)
{
	struct iovec iov[64];
	while (len) {
		int n = 0;
		size_t left = len;
		while (n < 64 && left) {
			size_t l = left < sizeof zeros ? left : sizeof zeros;
			iov[n++] = (struct iovec){ zeros, l };
			left -= l;
		}
		ssize_t w = pwritev(fd, iov, n, (off_t)off);
		if (w <= 0) {
			perror("pwritev");
			exit(1);
		}
		off += (size_t)w;
		len -= (size_t)w;
	}
}

struct job {
	unsigned char *p;
	size_t len;
	int advice;
};

static void *advise(void *arg)
{
	struct job *j = arg;
	if (madvise(j->p, j->len, j->advice))
		perror("madvise");
	return NULL;
}

/* Front/back: this thread writes chunks from the front, the helper faults from the back. */
struct fb {
	unsigned char *p;
	size_t n, claimed, back;
};

static void *fb_back(void *arg)
{
	struct fb *f = arg;
	while (__atomic_fetch_add(&f->claimed, 1, __ATOMIC_RELAXED) < f->n) {
		size_t c = f->n - 1 - f->back++;
		madvise(f->p + c * CHUNK, CHUNK, MADV_POPULATE_WRITE);
	}
	return NULL;
}

enum { ANCHOR, PW1, PW2, PWRITEV, FRONTBACK, FALLOC, MAPPOP, NV };
static const char *const names[NV] = {
	"anon MAP_POPULATE+mlock (anchor)", "memfd ONFAULT+POPULATE_WRITE x1",
	"memfd ONFAULT+POPULATE_WRITE x2 halves", "memfd pwritev zeros+POPULATE_READ",
	"memfd front pwritev / back PW (lib)", "memfd fallocate+mlock", "memfd MAP_POPULATE+mlock",
};

static double t_close;

static double variant(int v, size_t len)
{
	unsigned char *p;
	int fd = -1;
	double t0 = umb_now_ns();
	if (v == ANCHOR) {
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
			 -1, 0);
		mlock(p, len);
	} else {
		fd = memfd_create("pv", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (ftruncate(fd, (off_t)len))
			exit(1);
		fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
		if (v == FALLOC && fallocate(fd, 0, 0, (off_t)len))
			perror("fallocate");
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | (v == MAPPOP ? MAP_POPULATE : 0),
			 fd, 0);
		if (v == FALLOC || v == MAPPOP) {
			mlock(p, len);
		} else {
			mlock2(p, len, MLOCK_ONFAULT);
			if (v == PW1) {
				madvise(p, len, MADV_POPULATE_WRITE);
			} else if (v == PW2) {
				struct job j = { p + len / 2, len - len / 2, MADV_POPULATE_WRITE };
				pthread_t t;
				pthread_create(&t, NULL, advise, &j);
				madvise(p, len / 2, MADV_POPULATE_WRITE);
				pthread_join(t, NULL);
			} else if (v == PWRITEV) {
				write_zeros(fd, 0, len);
				madvise(p, len, MADV_POPULATE_READ);
			} else {
				struct fb f = { p, len / CHUNK, 0, 0 };
				pthread_t t;
				pthread_create(&t, NULL, fb_back, &f);
				size_t front = 0;
				while (__atomic_fetch_add(&f.claimed, 1, __ATOMIC_RELAXED) < f.n)
					write_zeros(fd, front++ * CHUNK, CHUNK);
				madvise(p, front * CHUNK, MADV_POPULATE_READ);
				pthread_join(t, NULL);
			}
		}
	}
	double t1 = umb_now_ns();
	p[len - 1] = 1;
	double c0 = umb_now_ns();
	munmap(p, len);
	if (fd >= 0)
		close(fd);
	t_close = umb_now_ns() - c0;
	return t1 - t0;
}

int main(int argc, char **argv)
{
	size_t len = (size_t)(argc > 1 ? atoi(argv[1]) : 16) << 20;
	int reps = argc > 2 ? atoi(argv[2]) : 15;
	if (reps < 1 || reps > MAX_REPS || len % CHUNK)
		return 2;
	static double o[NV][MAX_REPS], c[NV][MAX_REPS];
	for (int v = 0; v < NV; v++)
		variant(v, len); /* warm-up */
	for (int r = 0; r < reps; r++)
		for (int j = 0; j < NV; j++) {
			int v = (j + r) % NV;
			o[v][r] = variant(v, len) / 1e6;
			c[v][r] = t_close / 1e6;
		}
	struct umb_stats so[NV], sc[NV];
	for (int v = 0; v < NV; v++) {
		so[v] = umb_stats_of(o[v], reps);
		sc[v] = umb_stats_of(c[v], reps);
	}
	printf("%zu MiB, %d reps; ms: median (min..max); ratios to the anchor\n", len >> 20, reps);
	for (int v = 0; v < NV; v++)
		printf("%-40s open %8.2f (%.2f..%.2f) x%.2f  close %7.2f x%.2f  both x%.2f\n", names[v],
		       so[v].median, so[v].min, so[v].max, so[v].median / so[0].median, sc[v].median,
		       sc[v].median / sc[0].median,
		       (so[v].median + sc[v].median) / (so[0].median + sc[0].median));
	return 0;
}
