/* SPDX-License-Identifier: MIT */
/* Cross-process sharing, Linux: ids carried by memfd names and looked up through
 * /proc/<pid>/fd (fd passing over Unix-domain sockets is in share_sock.c).
 *
 * How ids work, and why this way.
 *
 * An id is (creator pid << 10) | slot: the pid of the process that opened the Block
 * (below 2^22, PID_MAX_LIMIT of 64-bit Linux) and one of 1024 slots of that process,
 * taken at open and given back at close. The id is written into the name of the
 * Block's memfd, "unimem:<8 hex digits>". The kernel keeps that name with the open
 * file itself and shows it in /proc/<pid>/fd/<n> ("/memfd:unimem:... (deleted)").
 *
 *  - No name lives in any file system. The only record of an id is the creator's
 *    fd, and it goes when the fd goes: at unimem_block_close(), or when the kernel
 *    tears down a process killed with SIGKILL. There is nothing to reclaim after a
 *    crash and nobody has to do it: the kernel has done it before the next Block
 *    open of anyone. (The alternative, a per-user directory under /dev/shm with one
 *    entry per id, needs O_EXCL allocation, a scan for dead pids on every open, a
 *    trusted sticky directory for the global id space that -EACCES needs, and still
 *    leaves names between a crash and the next scan.)
 *  - Ids never collide between live Blocks: two live processes never share a pid,
 *    and one process never gives a slot to two live Blocks (a slot goes back only
 *    after the memfd carrying its name is closed).
 *  - Lookup lists /proc/<pid>/fd, finds the entry named for the id and opens it:
 *    a new open file of the very same memfd. /proc/<pid>/fd passes the kernel's
 *    ptrace access check (PTRACE_MODE_READ): a process of another user gets EACCES,
 *    root (CAP_SYS_PTRACE) passes. The check is the kernel's, so it also holds
 *    against code that bypasses this library.
 *  - A name proves nothing (anyone can name a memfd so and send it to the
 *    creator's process), so the creator's own open file carries a mark: its file
 *    position, POS_MARK | id, set at open and reset at close. The position is the
 *    open file description's: a dup() shares it (and loses it at close); a lookup's
 *    or a receiver's open is a new description at 0 (recv reopens what it gets).
 *    Lookup takes only the entry with the name and the mark (/proc/<pid>/fdinfo).
 *  - Against pid and fd reuse: the name and the mark are checked again on the file
 *    actually opened, and the file must be a memfd with our seals. A dead creator's
 *    id can name a new Block only once its pid is reused by a new process that opens
 *    a Block in the same slot; slots are handed out round-robin from a random start
 *    per process image (getrandom), so a stale id of a live process names a new
 *    Block only after 1024 more opens, and after exec or pid reuse each new Block
 *    has a 1/1024 chance to (32 bits leave no room for a generation).
 *  - A creator whose main thread exited has no fd table under /proc/<pid>/fd; a
 *    live thread's /proc/<pid>/task/<tid>/fd shows it.
 *  - Opening costs nothing but getpid(): no file is created, nothing is scanned.
 *
 * Limits: 1024 live ids per process (later Blocks get id 0 and are shared by
 * unimem_block_send() only); ids mean something within one pid namespace, like
 * pids (across containers, pass the fd); a creator that is not dumpable (it changed
 * its uid, runs set-uid, or set PR_SET_DUMPABLE to 0) can be looked up by root
 * only, as for ptrace; lookup reads one /proc link per open fd of the creator. */
#define _GNU_SOURCE
#include "linux.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

#define SLOT_BITS 10u
#define SLOTS (1u << SLOT_BITS)
#define PID_LIMIT (1u << (32u - SLOT_BITS))
/* File position of the creator's own open file of a Block with an id: POS_MARK | id.
 * It lives on the open file description (shared by dup, not by a reopen through
 * /proc), is shown in /proc/<pid>/fdinfo/<n> and is reset to 0 at close, so lookup
 * tells the creator's live fd from a dup of a closed Block's fd, from a lookup's or
 * a receiver's fd (opened anew: position 0) and from a memfd merely named like one. */
#define POS_MARK 0x554d000000000000ull

/* Which Block holds each slot of this process. A forked child inherits the table
 * with the Blocks it inherited; its own Blocks carry its own pid, so they cannot
 * collide with the inherited ones, which free their slots at close as usual. */
static _Atomic(unimem_block *) slots[SLOTS];
/* Next slot to try (low bits) and, in bit 31, whether this process image picked its
 * random first slot: after exec the table is new and, without it, the same slots
 * (hence ids) would come again in the same order. */
static atomic_uint next_slot;
#define SEEDED (1u << 31)

static unsigned first_slot(void)
{
	unsigned cur = atomic_load_explicit(&next_slot, memory_order_relaxed);
	if (cur & SEEDED)
		return cur;
	unsigned r;
	if (getrandom(&r, sizeof r, GRND_NONBLOCK) != sizeof r) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		r = (unsigned)ts.tv_nsec ^ (unsigned)getpid() * 2654435761u;
	}
	unsigned seeded = (r & (SLOTS - 1)) | SEEDED;
	/* Another thread may have seeded first: then take its value. */
	if (!atomic_compare_exchange_strong_explicit(&next_slot, &cur, seeded,
						     memory_order_relaxed, memory_order_relaxed))
		return cur;
	return seeded;
}

static void name_for(char name[UMI_SHARE_NAME_MAX], uint32_t id)
{
	if (id)
		snprintf(name, UMI_SHARE_NAME_MAX, "unimem:%08x", (unsigned)id);
	else
		snprintf(name, UMI_SHARE_NAME_MAX, "unimem");
}

void umi_share_claim(unimem_block *b, char name[UMI_SHARE_NAME_MAX])
{
	b->id = 0;
	pid_t pid = getpid();
	if (pid > 0 && (unsigned)pid < PID_LIMIT) {
		unsigned start = first_slot() & (SLOTS - 1);
		for (unsigned i = 0; i < SLOTS; i++) {
			unsigned s = (start + i) & (SLOTS - 1);
			unimem_block *none = NULL;
			if (atomic_load_explicit(&slots[s], memory_order_relaxed))
				continue;
			if (atomic_compare_exchange_strong_explicit(&slots[s], &none, b,
								    memory_order_acq_rel,
								    memory_order_relaxed)) {
				atomic_store_explicit(&next_slot, ((s + 1) & (SLOTS - 1)) | SEEDED,
						      memory_order_relaxed);
				b->id = (uint32_t)pid << SLOT_BITS | s;
				break;
			}
		}
	}
	name_for(name, b->id);
}

void umi_share_mark(unimem_block *b)
{
	if (b->id && lseek(b->fd, (off_t)(POS_MARK | b->id), SEEK_SET) < 0)
		b->id = 0; /* no mark, no id: lookup must never find it unmarked */
}

void umi_share_unmark(unimem_block *b)
{
	/* Only the creator's fd carries the mark (a lookup of an own Block has an id too),
	 * and only the creating process takes it off: a forked child closing the Blocks it
	 * inherited shares their open files with the creator, who still holds them. */
	if (b->id && atomic_load_explicit(&slots[b->id & (SLOTS - 1)], memory_order_relaxed) == b &&
	    (uint32_t)getpid() == b->id >> SLOT_BITS)
		lseek(b->fd, 0, SEEK_SET);
}

void umi_share_release(unimem_block *b)
{
	if (!b || !b->id)
		return;
	/* Only the Block that claimed the slot gives it back: looked-up and received
	 * Blocks carry another Block's id (maybe one of this process). */
	unimem_block *mine = b;
	atomic_compare_exchange_strong_explicit(&slots[b->id & (SLOTS - 1)], &mine, NULL,
						memory_order_release, memory_order_relaxed);
}

/* What readlink() of /proc/<pid>/fd/<n> shows for the memfd of id `id`. */
static size_t link_for(char *buf, size_t len, uint32_t id)
{
	int n = snprintf(buf, len, "/memfd:unimem:%08x (deleted)", (unsigned)id);
	return n > 0 && (size_t)n < len ? (size_t)n : 0;
}

/* The id in the name of our memfd `fd`, or 0 when it carries none. */
static uint32_t id_of_fd(int fd)
{
	char path[40], link[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, link, sizeof link - 1);
	if (n <= 0)
		return 0;
	link[n] = '\0';
	unsigned id;
	char tail[16];
	if (sscanf(link, "/memfd:unimem:%8x%15s", &id, tail) != 2 || strcmp(tail, "(deleted)") ||
	    strlen(link) != strlen("/memfd:unimem:00000000 (deleted)") || !(id >> SLOT_BITS))
		return 0;
	return id;
}

/* Validates that fd is a memfd sealed against shrink and grow, writable (or sealed with
 * F_SEAL_FUTURE_WRITE: then mapped read-only), with a size that is a positive multiple
 * of its page; refuses sizes over `max` (-EFBIG) or that the machine cannot back
 * (-ENOMEM) before touching a page; maps it and, with `pin`, pins it (a lookup's or a
 * receiver's pages hold data: faulted in, never written). */
int umi_share_adopt(unimem_block *b, int fd, uint64_t want, uint64_t want_page, uint32_t id,
		    uint64_t max, bool pin)
{
	struct stat st;
	int err;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) {
		err = umi_fail(-EBADMSG, "the fd is not a regular file of positive size");
		goto fail;
	}
	int seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW) ||
	    (seals & F_SEAL_WRITE)) {
		err = umi_fail(-EBADMSG, "the fd is not a memfd sealed against shrink and "
				"grow (and not against writes)");
		goto fail;
	}
	bool ro = seals & F_SEAL_FUTURE_WRITE;
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || (!ro && (fl & O_ACCMODE) != O_RDWR)) {
		err = umi_fail(-EBADMSG, "the fd is neither open for reading and writing "
				"nor sealed read-only by unimem_block_seal");
		goto fail;
	}
	size_t page = umi_os_page_size();
	size_t blk = st.st_blksize > 0 ? (size_t)st.st_blksize : page;
	if (blk > page && !(blk & (blk - 1)))
		page = blk; /* hugetlbfs tells its huge page size */
	uint64_t size = (uint64_t)st.st_size;
	if (size % page || size > SIZE_MAX || (want && size != want) ||
	    (want_page && want_page != page)) {
		err = umi_fail(-EBADMSG, "the file's size (%llu bytes) or page (%zu bytes) is not a "
				"Block's, or not what the message announced (%llu, %llu)",
				(unsigned long long)size, page, (unsigned long long)want,
				(unsigned long long)want_page);
		goto fail;
	}
	/* The limits of an open, before any page is touched: a peer announces any size
	 * (a sparse file costs it nothing; pinning it here would cost this process). */
	if (max && size > max) {
		err = -EFBIG;
		goto fail;
	}
	if (!umi_linux_can_back((size_t)size, true)) {
		err = -ENOMEM;
		goto fail;
	}

	void *p = mmap(NULL, (size_t)size, ro ? PROT_READ : PROT_READ | PROT_WRITE, MAP_SHARED,
		       fd, 0);
	if (p == MAP_FAILED) {
		err = errno == ENOMEM || errno == EAGAIN
			      ? -ENOMEM
			      : umi_fail(-EBADMSG, "the fd cannot be mapped shared");
		goto fail;
	}
	b->ptr = p;
	b->size = (size_t)size;
	b->page = page;
	b->fd = fd;
	b->id = id;
	b->writable = !ro;
	/* This holder's lock, this holder's limit (mlock2(MLOCK_ONFAULT) checks
	 * RLIMIT_MEMLOCK before a page is faulted). */
	if (pin) {
		err = umi_linux_pin(b, false, false);
		if (err) {
			munmap(p, (size_t)size);
			b->fd = -1;
			goto fail;
		}
	}
	return 0;
fail:
	close(fd);
	return err;
}

/* The file position /proc/<dir>/fdinfo/<n> shows, or -1. */
static long long pos_of(int procdir, const char *n)
{
	char path[300], buf[256];
	snprintf(path, sizeof path, "fdinfo/%s", n);
	int fd = openat(procdir, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t len = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (len <= 0)
		return -1;
	buf[len] = '\0';
	long long pos;
	return sscanf(buf, "pos: %lld", &pos) == 1 ? pos : -1;
}

/* Look for the creator's live, marked fd of `id` in the fd table that the proc
 * directory `base` ("/proc/<pid>" or "/proc/<pid>/task/<tid>") shows. *listed says
 * whether the table listed any fd (none: the task has no fd table any more). */
static int scan(unimem_block *b, const char *base, uint32_t id, uint64_t max, bool pin,
		bool *listed)
{
	char want[64];
	size_t want_len = link_for(want, sizeof want, id);
	*listed = false;
	int pdir = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pdir < 0)
		return errno == EMFILE || errno == ENFILE ? -EMFILE : -ENOENT;
	int dfd = openat(pdir, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		int e = errno;
		close(pdir);
		if (e == EACCES || e == EPERM)
			return -EACCES; /* another user's process (or not dumpable) */
		if (e == EMFILE || e == ENFILE)
			return -EMFILE;
		return e == ENOMEM ? -ENOMEM : -ENOENT;
	}
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		close(pdir);
		return -ENOMEM;
	}
	int err = -ENOENT;
	bool denied = false;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		*listed = true;
		char link[64];
		ssize_t n = readlinkat(dfd, e->d_name, link, sizeof link);
		if (n < 0 && (errno == EACCES || errno == EPERM)) {
			/* The directory opened (root without CAP_SYS_PTRACE passes its
			 * mode) but the kernel's ptrace check refuses its links. */
			denied = true;
			break;
		}
		if (n != (ssize_t)want_len || memcmp(link, want, want_len))
			continue;
		int fd = openat(dfd, e->d_name, O_RDWR | O_CLOEXEC | O_NOCTTY);
		if (fd < 0 && errno == EACCES)
			fd = openat(dfd, e->d_name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE) {
				err = -EMFILE;
				break;
			}
			continue; /* closed since the readlink */
		}
		/* Only the creator's own live fd is marked (a dup of a closed Block's fd,
		 * another holder's fd or a memfd merely named like ours is not), and the
		 * name is checked again on the file held now (the number may have been
		 * reused since the readlink). */
		if (pos_of(pdir, e->d_name) != (long long)(POS_MARK | id) || id_of_fd(fd) != id) {
			close(fd);
			continue;
		}
		err = umi_share_adopt(b, fd, 0, 0, id, max, pin);
		if (err != -EBADMSG)
			break;
		err = -ENOENT; /* named like a Block, but not one of ours */
	}
	closedir(d);
	close(pdir);
	return denied ? -EACCES : err;
}

int umi_os_lookup(unimem_block *b, uint32_t id, uint64_t max_bytes, bool pin)
{
	pid_t pid = (pid_t)(id >> SLOT_BITS);
	if (pid <= 0)
		return -ENOENT;
	char base[64];
	snprintf(base, sizeof base, "/proc/%d", (int)pid);
	bool listed;
	int err = scan(b, base, id, max_bytes, pin, &listed);
	if (err != -ENOENT || listed)
		return err;
	/* No fd table: the main thread has exited (pthread_exit) while others run on,
	 * and /proc/<pid>/fd lists nothing. A live thread's task directory shows the
	 * table they share. */
	char tasks[64];
	snprintf(tasks, sizeof tasks, "/proc/%d/task", (int)pid);
	DIR *d = opendir(tasks);
	if (!d)
		return -ENOENT;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9' || atoi(e->d_name) == pid)
			continue;
		snprintf(base, sizeof base, "/proc/%d/task/%.16s", (int)pid, e->d_name);
		err = scan(b, base, id, max_bytes, pin, &listed);
		if (err != -ENOENT || listed)
			break;
	}
	closedir(d);
	return err;
}
