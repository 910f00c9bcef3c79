/* SPDX-License-Identifier: MIT */
/* Cross-process sharing, Linux: passing a Block's fd over Unix-domain sockets
 * (SCM_RIGHTS). Ids and lookup are in share.c; both adopt what they get with
 * umi_share_adopt(). */
#define _GNU_SOURCE
#include "linux.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* How long a blocking recv waits for the rest of a message that has begun. */
#define RECV_STALL_MS 2000

/* What unimem_block_send() puts on the wire beside the fd. Same host, host order. */
struct wire {
	uint32_t magic;
	uint32_t id;
	uint64_t size;
	uint64_t page;
};
#define WIRE_MAGIC 0x31424d55u /* "UMB1" */

static int wait_for(int sock, short events)
{
	struct pollfd pfd = { .fd = sock, .events = events };
	while (poll(&pfd, 1, -1) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

int umi_os_send(int unix_socket, const unimem_block *b)
{
	if (b->fd < 0)
		return -EINVAL;
	if (unix_socket < 0)
		return -EBADF;
	struct wire w = { WIRE_MAGIC, b->id, b->size, b->page };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} c;
	memset(&c, 0, sizeof c);
	struct iovec iov = { &w, sizeof w };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf,
			    .msg_controllen = sizeof c.buf };
	struct cmsghdr *h = CMSG_FIRSTHDR(&m);
	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_RIGHTS;
	h->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(h), &b->fd, sizeof(int));

	size_t done = 0;
	while (done < sizeof w) {
		/* MSG_NOSIGNAL: a closed peer is -EPIPE, not a SIGPIPE. */
		ssize_t n = sendmsg(unix_socket, &m, MSG_NOSIGNAL);
		if (n < 0) {
			if (done && errno == EINTR)
				continue;
			if (done && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				int err = wait_for(unix_socket, POLLOUT);
				if (err)
					return err;
				continue;
			}
			return -errno;
		}
		/* A stream socket may take part of it: the fd went with the first byte. */
		done += (size_t)n;
		iov.iov_base = (char *)&w + done;
		iov.iov_len = sizeof w - done;
		m.msg_control = NULL;
		m.msg_controllen = 0;
	}
	return 0;
}

/* Keep the first fd passed in `m` in *fd; close every other one, and say -EBADMSG
 * when there were others (or when the kernel had to drop some), -EMFILE when it
 * dropped them because this process has no fd number left. */
static int take_fds(struct msghdr *m, int *fd, int sock)
{
	int err = 0;
	if (m->msg_flags & MSG_CTRUNC) {
		/* More fds than room for them, or no fd number left here for one. */
		int probe = fcntl(sock, F_DUPFD_CLOEXEC, 0);
		err = probe < 0 && (errno == EMFILE || errno == ENFILE)
			      ? -EMFILE
			      : umi_fail(-EBADMSG, "more fds came than a Block message carries");
		if (probe >= 0)
			close(probe);
	}
	for (struct cmsghdr *h = CMSG_FIRSTHDR(m); h; h = CMSG_NXTHDR(m, h)) {
		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int f;
			memcpy(&f, CMSG_DATA(h) + i * sizeof(int), sizeof f);
			if (*fd < 0) {
				*fd = f;
			} else {
				close(f);
				err = umi_fail(-EBADMSG, "more than one fd came with the message");
			}
		}
	}
	return err;
}

/* Milliseconds left until `deadline` (CLOCK_MONOTONIC), 0 when past. */
static int ms_left(const struct timespec *deadline)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long long ms = (long long)(deadline->tv_sec - now.tv_sec) * 1000 +
		       (deadline->tv_nsec - now.tv_nsec) / 1000000;
	return ms > 0 ? (int)ms : 0;
}

/* Wait up to `ms` for the rest of a message: 0, -ETIMEDOUT, or -errno of poll(). */
static int wait_in(int sock, int ms)
{
	struct pollfd pfd = { .fd = sock, .events = POLLIN };
	int n = poll(&pfd, 1, ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	return n == 0 ? -ETIMEDOUT : 0;
}

/* Replace the received fd by an open file of our own of the same memfd (through
 * /proc/self/fd): the sender keeps no hold on its file position (the mark lookup
 * trusts) nor on its status flags. Never more access than the sender gave; only
 * regular files are reopened (a FIFO's open could block). Closes `fd`. */
static int reopen(int fd, int *out)
{
	struct stat st;
	int fl = fcntl(fd, F_GETFL);
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || fl < 0 ||
	    (fl & O_ACCMODE) == O_WRONLY) {
		close(fd);
		return umi_fail(-EBADMSG, "the fd that came is not a regular file open for reading");
	}
	char path[40];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	int mode = (fl & O_ACCMODE) == O_RDWR ? O_RDWR : O_RDONLY;
	int nfd = open(path, mode | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	int e = errno;
	close(fd);
	if (nfd < 0)
		return e == EMFILE || e == ENFILE ? -EMFILE : e == ENOMEM ? -ENOMEM
			: umi_fail(-EBADMSG, "the fd that came cannot be reopened");
	*out = nfd;
	return 0;
}

int umi_os_recv(unimem_block *b, int unix_socket, uint64_t max_bytes, bool pin)
{
	if (unix_socket < 0)
		return -EBADF;
	int type;
	socklen_t tlen = sizeof type;
	if (getsockopt(unix_socket, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0)
		return -errno;
	int sfl = fcntl(unix_socket, F_GETFL);
	bool nonblocking = sfl >= 0 && (sfl & O_NONBLOCK);

	struct wire w;
	size_t got = 0;
	int fd = -1, err = 0;
	struct timespec deadline = { 0, 0 };
	while (got < sizeof w) {
		/* Room for a few fds, so that a sender passing several is told apart from
		 * one passing one (and each extra fd is closed, not leaked). */
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(4 * sizeof(int))];
		} c;
		struct iovec iov = { (char *)&w + got, sizeof w - got };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf,
				    .msg_controllen = sizeof c.buf };
		/* Once a message has begun, never wait without bound for its rest: a
		 * non-blocking socket says -EAGAIN, a blocking one waits RECV_STALL_MS. */
		ssize_t n = recvmsg(unix_socket, &m, MSG_CMSG_CLOEXEC | (got ? MSG_DONTWAIT : 0));
		if (n < 0) {
			if (got && errno == EINTR)
				continue;
			if (got && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				if (nonblocking) {
					err = -EAGAIN;
					break;
				}
				err = wait_in(unix_socket, ms_left(&deadline));
				if (err)
					break;
				continue;
			}
			err = -errno;
			break;
		}
		err = take_fds(&m, &fd, unix_socket);
		if (err)
			break;
		if (n == 0 && type == SOCK_STREAM) {
			/* The peer closed: before anything came, or halfway through. */
			err = got ? umi_fail(-EBADMSG, "the peer closed halfway through a Block message")
				  : -ECONNRESET;
			break;
		}
		if (n == 0 && type == SOCK_SEQPACKET && fd < 0) {
			/* End of file, or an empty record: the peer's hang-up tells them apart. */
			struct pollfd pfd = { .fd = unix_socket, .events = POLLIN | POLLRDHUP };
			bool hup = poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLHUP | POLLRDHUP));
			err = hup ? -ECONNRESET
				  : umi_fail(-EBADMSG, "an empty record came, with no fd");
			break;
		}
		if (!got) {
			clock_gettime(CLOCK_MONOTONIC, &deadline);
			deadline.tv_sec += RECV_STALL_MS / 1000;
			deadline.tv_nsec += (RECV_STALL_MS % 1000) * 1000000L;
			if (deadline.tv_nsec >= 1000000000L) {
				deadline.tv_sec++;
				deadline.tv_nsec -= 1000000000L;
			}
		}
		got += (size_t)n;
		if (type != SOCK_STREAM && (got != sizeof w || (m.msg_flags & MSG_TRUNC))) {
			/* a datagram of another size: not ours */
			err = umi_fail(-EBADMSG, "a record of %zu bytes came; a Block message has %zu",
				       got, sizeof w);
			break;
		}
	}
	if (!err && fd < 0)
		err = umi_fail(-EBADMSG, "the message came without an fd");
	else if (!err && w.magic != WIRE_MAGIC)
		err = umi_fail(-EBADMSG, "the message does not begin with unimem's magic number");
	if (err) {
		if (fd >= 0)
			close(fd);
		return err;
	}
	err = reopen(fd, &fd);
	if (err)
		return err;
	/* A received Block has no id: the memfd's name is the sender's to choose, so it
	 * says nothing about whose Block this is. */
	return umi_share_adopt(b, fd, w.size, w.page, 0, max_bytes, pin);
}
