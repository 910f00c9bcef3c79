/* SPDX-License-Identifier: MIT */
/* unimem_net, the helper process's side (net_helper.c starts it): map each Block whose
 * memfd comes over the socket, export the mapping with the in-process exporter
 * (net_ucx.c), answer with the descriptor; revoke on request; revoke everything and end
 * when the other end closes. The process at the other end is the one that started this
 * one (the same user, the same library): its requests are trusted to be well-formed, and
 * anything else ends the helper. */
#define _GNU_SOURCE
#include "base.h"
#include "net_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <unimem/unimem.h>

struct entry {
	uint64_t token;
	void *map; /* the mapping keeps the memfd's pages; the fd is closed once mapped */
	size_t size;
	struct entry *next;
};

static struct entry *entries;

static int reply(int sock, struct umi_neth_rep *r)
{
	r->magic = UMI_NETH_MAGIC;
	r->version = UMI_NETH_VERSION;
	ssize_t n;
	while ((n = send(sock, r, sizeof *r, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	return n == (ssize_t)sizeof *r ? 0 : -1;
}

static void drop(struct entry *e)
{
	umi_net_unexport_here(e);
	munmap(e->map, e->size);
	free(e);
}

/* Export the memfd `fd` (consumed) of q->size bytes. */
static int do_export(const struct umi_neth_req *q, int fd, struct umi_neth_rep *r)
{
	struct stat st;
	if (fd < 0)
		return umi_fail(-EBADMSG, "the export request came without the Block's fd");
	if (fstat(fd, &st) != 0 || st.st_size < 0 || (uint64_t)st.st_size < q->size || !q->size) {
		close(fd);
		return umi_fail(-EBADMSG, "the Block's memfd is smaller than the Block");
	}
	const bool ro = q->flags & UNIMEM_NET_READONLY;
	void *map = mmap(NULL, q->size, ro ? PROT_READ : PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	const int e = errno;
	close(fd);
	if (map == MAP_FAILED)
		return umi_fail(-e, e == EPERM ? "the Block is sealed read-only: export it with "
					 "UNIMEM_NET_READONLY" : "mmap of the Block in the export helper failed");
	struct entry *x = calloc(1, sizeof *x);
	if (!x) {
		munmap(map, q->size);
		return -ENOMEM;
	}
	*x = (struct entry){ .token = q->token, .map = map, .size = q->size };
	size_t len = 0;
	size_t cap = q->cap < sizeof r->desc ? q->cap : sizeof r->desc;
	struct umi_net_where w = q->where;
	w.addr[sizeof w.addr - 1] = '\0';
	w.port[sizeof w.port - 1] = '\0';
	int err = umi_net_export_here(x, map, q->size, -1, q->flags, &w, r->desc, cap, &len);
	r->len = (uint32_t)len;
	if (err) {
		munmap(map, q->size);
		free(x);
		return err;
	}
	x->next = entries;
	entries = x;
	return 0;
}

static int do_unexport(uint64_t token)
{
	for (struct entry **pe = &entries; *pe; pe = &(*pe)->next) {
		if ((*pe)->token == token) {
			struct entry *e = *pe;
			*pe = e->next;
			drop(e);
			return 0;
		}
	}
	return umi_fail(-ENOENT, "the export helper has no such export");
}

int umi_net_serve(int sock)
{
	struct umi_neth_rep r = { .op = UMI_NETH_HELLO, .pid = getpid() };
	if (reply(sock, &r) != 0)
		return 1;
	for (;;) {
		struct umi_neth_req q;
		char ctl[CMSG_SPACE(sizeof(int))];
		struct iovec iov = { .iov_base = &q, .iov_len = sizeof q };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
				    .msg_controllen = sizeof ctl };
		ssize_t n;
		while ((n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
			;
		int fd = -1;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
			    c->cmsg_len == CMSG_LEN(sizeof(int)))
				memcpy(&fd, CMSG_DATA(c), sizeof fd);
		if (n != (ssize_t)sizeof q || q.magic != UMI_NETH_MAGIC ||
		    q.version != UMI_NETH_VERSION || (m.msg_flags & MSG_CTRUNC)) {
			if (fd >= 0)
				close(fd);
			break; /* the other end closed (or is not ours) */
		}
		memset(&r, 0, sizeof r);
		r.op = q.op;
		r.token = q.token;
		umi_fail_clear();
		if (q.op == UMI_NETH_EXPORT) {
			r.rc = do_export(&q, fd, &r);
		} else {
			if (fd >= 0)
				close(fd);
			r.rc = q.op == UMI_NETH_UNEXPORT ? do_unexport(q.token)
							  : umi_fail(-EINVAL, "unknown request");
		}
		if (r.rc)
			snprintf(r.msg, sizeof r.msg, "%s", umi_fail_detail(r.rc));
		if (reply(sock, &r) != 0)
			break;
	}
	while (entries) {
		struct entry *e = entries;
		entries = e->next;
		drop(e);
	}
	return 0;
}
