// SPDX-License-Identifier: MIT
/* Experiment: ways to open a pinned memfd Block, beside anonymous mmap+MAP_POPULATE+mlock.
 * Build: cc -O2 -pthread bench/populate_variants.c -o /tmp/pv ; run: /tmp/pv [MiB] [reps] */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23
#endif

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

struct job { char *p; size_t len; int adv; };
static void *pop(void *a)
{
	struct job *j = a;
	if (madvise(j->p, j->len, j->adv))
		perror("madvise");
	return NULL;
}
static void par(char *p, size_t len, int n, int adv)
{
	pthread_t t[8];
	struct job j[8];
	size_t per = len / n;
	for (int i = 0; i < n; i++)
		j[i] = (struct job){ p + i * per, i == n - 1 ? len - i * per : per, adv };
	for (int i = 1; i < n; i++)
		pthread_create(&t[i], NULL, pop, &j[i]);
	pop(&j[0]);
	for (int i = 1; i < n; i++)
		pthread_join(t[i], NULL);
}

static char zeros[1 << 16] __attribute__((aligned(4096)));
static void write_zeros(int fd, size_t len)
{
	struct iovec iov[1024];
	for (int i = 0; i < 1024; i++)
		iov[i] = (struct iovec){ zeros, sizeof zeros };
	size_t off = 0;
	while (off < len) {
		size_t left = len - off;
		int n = 0;
		while (n < 1024 && left) {
			size_t l = left < sizeof zeros ? left : sizeof zeros;
			iov[n].iov_len = l;
			left -= l;
			n++;
		}
		ssize_t w = pwritev(fd, iov, n, off);
		if (w <= 0) { perror("pwritev"); exit(1); }
		off += w;
		for (int i = 0; i < n; i++) iov[i].iov_len = sizeof zeros;
	}
}

static int mkfd(size_t len)
{
	int fd = memfd_create("x", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	ftruncate(fd, len);
	fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	return fd;
}
static char *mapfd(int fd, size_t len, int extra)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | extra, fd, 0);
	if (p == MAP_FAILED) { perror("mmap"); exit(1); }
	return p;
}


struct hyb { char *p; int fd; size_t len; size_t chunk; size_t nchunks; size_t front, back; };
/* front: pwritev zeros chunk by chunk from the start; back: POPULATE_WRITE from the end */
static void *hyb_back(void *a)
{
	struct hyb *h = a;
	for (;;) {
		size_t b = __atomic_load_n(&h->back, __ATOMIC_RELAXED);
		size_t f = __atomic_load_n(&h->front, __ATOMIC_RELAXED);
		if (b <= f) break;
		if (!__atomic_compare_exchange_n(&h->back, &b, b - 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) continue;
		if (b - 1 < __atomic_load_n(&h->front, __ATOMIC_ACQUIRE)) { break; }
		madvise(h->p + (b - 1) * h->chunk, h->chunk, MADV_POPULATE_WRITE);
	}
	return NULL;
}

static size_t LEN;
static int variant(int v)
{
	size_t len = LEN;
	char *p;
	int fd = -1;
	switch (v) {
	case 0: /* anon MAP_POPULATE + mlock */
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		mlock(p, len);
		break;
	case 1: /* memfd onfault + POPULATE_WRITE 1 thread */
		fd = mkfd(len); p = mapfd(fd, len, 0);
		mlock2(p, len, MLOCK_ONFAULT); par(p, len, 1, MADV_POPULATE_WRITE);
		break;
	case 2: /* memfd onfault + POPULATE_WRITE 2 threads */
		fd = mkfd(len); p = mapfd(fd, len, 0);
		mlock2(p, len, MLOCK_ONFAULT); par(p, len, 2, MADV_POPULATE_WRITE);
		break;
	case 3: /* memfd fallocate + mlock */
		fd = mkfd(len);
		if (fallocate(fd, 0, 0, len)) perror("fallocate");
		p = mapfd(fd, len, 0); mlock(p, len);
		break;
	case 4: /* memfd pwritev zeros + mlock (read faults, fault-around) */
		fd = mkfd(len); write_zeros(fd, len);
		p = mapfd(fd, len, 0); mlock(p, len);
		break;
	case 5: /* memfd pwritev zeros + onfault + POPULATE_READ 1 thread */
		fd = mkfd(len); write_zeros(fd, len);
		p = mapfd(fd, len, 0); mlock2(p, len, MLOCK_ONFAULT); par(p, len, 1, MADV_POPULATE_READ);
		break;
	case 6: /* memfd fallocate + onfault + POPULATE_WRITE 2 threads */
		fd = mkfd(len); fallocate(fd, 0, 0, len);
		p = mapfd(fd, len, 0); mlock2(p, len, MLOCK_ONFAULT); par(p, len, 2, MADV_POPULATE_WRITE);
		break;
	case 7: /* memfd mmap MAP_POPULATE + mlock */
		fd = mkfd(len); p = mapfd(fd, len, MAP_POPULATE); mlock(p, len);
		break;
	case 8: /* memfd pwritev zeros + mmap MAP_POPULATE|MAP_LOCKED */
		fd = mkfd(len); write_zeros(fd, len);
		p = mapfd(fd, len, MAP_POPULATE | MAP_LOCKED);
		break;
	case 9: /* anon MAP_POPULATE only */
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		break;
	case 10: /* memfd onfault + POPULATE_READ 2 threads */
		fd = mkfd(len); p = mapfd(fd, len, 0);
		mlock2(p, len, MLOCK_ONFAULT); par(p, len, 2, MADV_POPULATE_READ);
		break;
	case 11: /* 2 threads: A pwritev0 [0,h)+PR, B PW [h,len) */
		fd = mkfd(len); p = mapfd(fd, len, 0); mlock2(p, len, MLOCK_ONFAULT);
		{ size_t h = len / 2; struct job j = { p + h, len - h, MADV_POPULATE_WRITE }; pthread_t t;
		  pthread_create(&t, NULL, pop, &j); write_zeros(fd, h); madvise(p, h, MADV_POPULATE_READ); pthread_join(t, NULL); }
		break;
	case 12: /* 2 threads PW, dynamic 1 MiB chunks */
		fd = mkfd(len); p = mapfd(fd, len, 0); mlock2(p, len, MLOCK_ONFAULT);
		par(p, len, 2, MADV_POPULATE_WRITE);
		break;
	case 13: /* single thread pwritev0 + onfault + PR */
		fd = mkfd(len); p = mapfd(fd, len, 0); mlock2(p, len, MLOCK_ONFAULT);
		write_zeros(fd, len); madvise(p, len, MADV_POPULATE_READ);
		break;
	default: return -1;
	}
	((volatile char *)p)[len - 1] = 1;
	munmap(p, len);
	if (fd >= 0) close(fd);
	return 0;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	LEN = (size_t)(argc > 1 ? atoi(argv[1]) : 16) << 20;
	int reps = argc > 2 ? atoi(argv[2]) : 15;
	const char *names[] = { "anon POPULATE+mlock", "memfd onfault+PW x1", "memfd onfault+PW x2",
		"memfd fallocate+mlock", "memfd pwritev0+mlock", "memfd pwritev0+PR x1",
		"memfd falloc+PW x2", "memfd MAP_POPULATE+mlock", "memfd pwritev0+MAP_POP|LOCKED",
		"anon POPULATE", "memfd onfault+PR x2", "hybrid A:pwritev+PR B:PW", "PW x2 again", "pwritev0+PR onfault x1" };
	int nv = 14;
	double t[16][64];
	for (int w = 0; w < 2; w++)
		for (int v = 0; v < nv; v++) variant(v);
	for (int r = 0; r < reps; r++)
		for (int v = 0; v < nv; v++) { /* interleaved */
			double a = now(); variant(v); t[v][r] = now() - a;
		}
	double base = 0;
	for (int v = 0; v < nv; v++) {
		qsort(t[v], reps, sizeof(double), cmp);
		double med = t[v][reps / 2];
		if (v == 0) base = med;
		printf("%-32s med %8.3f ms  min %8.3f  max %8.3f  x%.2f\n", names[v], med / 1e6,
		       t[v][0] / 1e6, t[v][reps - 1] / 1e6, med / base);
	}
}
