/* SPDX-License-Identifier: MIT */
/* unimem_net, importing side: a handle per imported Block, with its own UCX worker and
 * one endpoint to the exporter's listener; reads and writes are one-sided (ucp_get_nbx,
 * ucp_put_nbx), waited for by progressing the handle's worker in the calling thread. */
#define _GNU_SOURCE
#include "base.h"
#include "block_pvt.h"
#include "net_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Started transfers in flight per handle (unimem_remote_*_start). 16, as ucx_perftest -O 16:
 * over tcp more large transfers in flight slow them down (ucx_perftest ucp_get of 1 MiB
 * here, MB = 2^20: 597 MB/s at -O 16, 184 at -O 64). */
#define UMI_NET_PENDING 16u

struct unimem_remote {
	umi_ucp_worker_h worker;
	umi_ucp_ep_h ep;
	umi_ucp_rkey_h rkey;
	uint64_t size;
	uint64_t addr;
	unsigned flags;
	unsigned timeout_ms;
	umi_ucs_status failed;  /* set by the endpoint's error handler */
	bool broken;            /* a call failed: every later one says -ENOTCONN */
	bool wrote;             /* a started write awaits its flush */
	unsigned npend;         /* started requests not yet waited for */
	void *pend[UMI_NET_PENDING];
};

static uint64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

static void on_error(void *arg, umi_ucp_ep_h ep, umi_ucs_status s)
{
	(void)ep;
	((unimem_remote *)arg)->failed = s;
}

/* Close the endpoint at once (its requests complete with an error). */
static void drop_ep(unimem_remote *r)
{
	if (!r->ep)
		return;
	if (r->rkey) {
		umi_ucp.rkey_destroy(r->rkey);
		r->rkey = NULL;
	}
	umi_ucp_request_param_t p = { .op_attr_mask = UMI_UCP_OP_ATTR_FIELD_FLAGS,
				      .flags = UMI_UCP_EP_CLOSE_FLAG_FORCE };
	void *q = umi_ucp.ep_close_nbx(r->ep, &p);
	r->ep = NULL;
	if (UMI_PTR_IS_PTR(q)) {
		for (int k = 0; k < 1000000 && umi_ucp.request_check_status(q) == UMI_UCS_INPROGRESS;
		     k++)
			umi_ucp.worker_progress(r->worker);
		umi_ucp.request_free(q);
	}
}

/* Wait for request q of `call` until it completes or the timeout passes. A failure breaks
 * the handle: its endpoint is closed, so nothing arrives into the caller's buffer later. */
static int wait_req(unimem_remote *r, void *q, const char *call)
{
	if (q == NULL)
		return 0;
	umi_ucs_status s;
	if (UMI_PTR_IS_ERR(q)) {
		s = UMI_PTR_STATUS(q);
		goto fail;
	}
	uint64_t deadline = now_ms() + r->timeout_ms;
	for (unsigned i = 1;; i++) {
		umi_ucp.worker_progress(r->worker);
		s = umi_ucp.request_check_status(q);
		if (s != UMI_UCS_INPROGRESS)
			break;
		if ((i & 255u) == 0 && now_ms() >= deadline) {
			drop_ep(r); /* completes q, with an error */
			for (int k = 0; k < 1000000 && umi_ucp.request_check_status(q) ==
							       UMI_UCS_INPROGRESS; k++)
				umi_ucp.worker_progress(r->worker);
			umi_ucp.request_free(q);
			r->broken = true;
			return umi_net_note(ETIMEDOUT, "the exporter did not answer within the "
					    "timeout (UNIMEM_NET_TIMEOUT_MS, unimem_remote_set_timeout)");
		}
	}
	umi_ucp.request_free(q);
	if (s == UMI_UCS_OK)
		return 0;
fail:
	if (r->failed != UMI_UCS_OK)
		s = r->failed;
	r->broken = true;
	drop_ep(r);
	return umi_net_fail(s, call);
}

/* Wait for every started request; the first failure wins, the others are still waited
 * for (or, once the endpoint is closed, complete with errors). */
static int wait_pending(unimem_remote *r)
{
	int first = 0;
	for (unsigned i = 0; i < r->npend; i++) {
		int e = wait_req(r, r->pend[i], "a started transfer");
		if (e && !first)
			first = e;
	}
	r->npend = 0;
	return first;
}

static void remote_free(unimem_remote *r)
{
	if (r->npend) {
		if (r->ep)
			drop_ep(r);
		wait_pending(r);
	}
	drop_ep(r);
	if (r->worker)
		umi_ucp.worker_destroy(r->worker);
	free(r);
}

int unimem_net_import(unimem_remote **out, const void *desc, size_t len)
{
	if (out)
		*out = NULL;
	if (!out || !desc)
		return umi_net_note(EINVAL, "NULL handle or descriptor");
	struct umi_net_desc d;
	int err = umi_net_desc_parse(&d, desc, len);
	if (err)
		return umi_net_note(-err, err == -EBADMSG ?
				    "not a unimem_net descriptor: truncated, forged or corrupt "
				    "(length, magic, checksum, sizes or address)" :
				    "a unimem_net descriptor of another format version");
	if ((err = umi_net_ready()) != 0)
		return err;
	unimem_remote *r = calloc(1, sizeof *r);
	if (!r)
		return -ENOMEM;
	r->size = d.size;
	r->addr = d.addr;
	r->flags = d.flags;
	r->timeout_ms = umi_net_default_timeout();
	umi_ucp_worker_params_t wp = { .field_mask = UMI_UCP_WORKER_PARAM_FIELD_THREAD_MODE,
				       .thread_mode = UMI_UCS_THREAD_MODE_SINGLE };
	umi_ucs_status s = umi_ucp.worker_create(umi_ucp_ctx, &wp, &r->worker);
	if (s != UMI_UCS_OK) {
		r->worker = NULL;
		err = umi_net_fail(s, "ucp_worker_create");
		goto fail;
	}
	struct sockaddr_storage ss = { 0 };
	socklen_t sslen;
	if (d.family == AF_INET) {
		struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
		v4->sin_family = AF_INET;
		v4->sin_port = htons(d.port);
		memcpy(&v4->sin_addr, d.ip, 4);
		sslen = sizeof *v4;
	} else {
		struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons(d.port);
		memcpy(&v6->sin6_addr, d.ip, 16);
		sslen = sizeof *v6;
	}
	umi_ucp_ep_params_t ep = {
		.field_mask = UMI_UCP_EP_PARAM_FIELD_FLAGS | UMI_UCP_EP_PARAM_FIELD_SOCK_ADDR |
			      UMI_UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
			      UMI_UCP_EP_PARAM_FIELD_ERR_HANDLER,
		.flags = UMI_UCP_EP_PARAMS_FLAGS_CLIENT_SERVER,
		.sockaddr = { (struct sockaddr *)&ss, sslen },
		.err_mode = UMI_UCP_ERR_HANDLING_MODE_PEER,
		.err_handler = { on_error, r },
	};
	if ((s = umi_ucp.ep_create(r->worker, &ep, &r->ep)) != UMI_UCS_OK) {
		r->ep = NULL;
		err = umi_net_fail(s, "ucp_ep_create");
		goto fail;
	}
	/* A flush completes once the connection is up (or says why it is not). */
	umi_ucp_request_param_t none = { 0 };
	if ((err = wait_req(r, umi_ucp.ep_flush_nbx(r->ep, &none), "connecting")) != 0) {
		if (err == -ENOTCONN || err == -ECONNRESET)
			err = umi_net_note(ECONNREFUSED, "the exporter refused or closed the "
					   "connection: it is gone or no longer exports this Block");
		goto fail;
	}
	if ((s = umi_ucp.ep_rkey_unpack(r->ep, d.rkey, &r->rkey)) != UMI_UCS_OK) {
		r->rkey = NULL;
		err = umi_net_fail(s, "ucp_ep_rkey_unpack");
		if (err == -EINVAL || err == -EIO)
			err = umi_net_note(EBADMSG, "the descriptor's remote key was refused by UCX");
		goto fail;
	}
	*out = r;
	return 0;
fail:
	remote_free(r);
	return err;
}

size_t unimem_remote_size(const unimem_remote *r)
{
	return r ? (size_t)r->size : 0;
}

/* Checks common to read and write; 1 when there is nothing to do. */
static int check(unimem_remote *r, uint64_t offset, const void *buf, size_t len)
{
	if (!r || (!buf && len))
		return umi_net_note(EINVAL, "NULL handle or buffer");
	if (offset > r->size || len > r->size - offset)
		return umi_net_note(ERANGE, "the range reaches outside the remote Block");
	if (r->broken || !r->ep)
		return umi_net_note(ENOTCONN, "this handle lost its exporter (an earlier call "
				    "failed): close it and import again");
	if (r->failed != UMI_UCS_OK) {
		r->broken = true;
		int err = umi_net_fail(r->failed, "connection");
		drop_ep(r);
		return err;
	}
	return len == 0;
}

/* check() for a write: a read-only export refuses it first (-EACCES). */
static int check_write(unimem_remote *r, uint64_t offset, const void *src, size_t len)
{
	if (r && (r->flags & UNIMEM_NET_READONLY))
		return umi_net_note(EACCES, "the Block was exported read-only");
	return check(r, offset, src, len);
}

int unimem_remote_read(unimem_remote *r, uint64_t offset, void *dst, size_t len)
{
	int err = check(r, offset, dst, len);
	if (err)
		return err < 0 ? err : 0;
	umi_ucp_request_param_t p = { 0 };
	return wait_req(r, umi_ucp.get_nbx(r->ep, dst, len, r->addr + offset, r->rkey, &p),
			"ucp_get_nbx");
}

int unimem_remote_write(unimem_remote *r, uint64_t offset, const void *src, size_t len)
{
	int err = check_write(r, offset, src, len);
	if (err)
		return err < 0 ? err : 0;
	umi_ucp_request_param_t p = { 0 };
	err = wait_req(r, umi_ucp.put_nbx(r->ep, src, len, r->addr + offset, r->rkey, &p),
		       "ucp_put_nbx");
	if (err)
		return err;
	/* The put is done locally; the flush waits until it is in the remote Block. */
	return wait_req(r, umi_ucp.ep_flush_nbx(r->ep, &p), "ucp_ep_flush_nbx");
}

/* Post q of a started transfer; when the window is full, wait for the oldest first. */
static int post(unimem_remote *r, void *q, const char *call)
{
	if (q == NULL)
		return 0;
	if (UMI_PTR_IS_ERR(q))
		return wait_req(r, q, call);
	int err = 0;
	if (r->npend == UMI_NET_PENDING) {
		err = wait_req(r, r->pend[0], call);
		memmove(r->pend, r->pend + 1, (UMI_NET_PENDING - 1) * sizeof r->pend[0]);
		r->npend--;
	}
	r->pend[r->npend++] = q;
	return err;
}

int unimem_remote_read_start(unimem_remote *r, uint64_t offset, void *dst, size_t len)
{
	int err = check(r, offset, dst, len);
	if (err)
		return err < 0 ? err : 0;
	umi_ucp_request_param_t p = { 0 };
	return post(r, umi_ucp.get_nbx(r->ep, dst, len, r->addr + offset, r->rkey, &p),
		    "ucp_get_nbx");
}

int unimem_remote_write_start(unimem_remote *r, uint64_t offset, const void *src, size_t len)
{
	int err = check_write(r, offset, src, len);
	if (err)
		return err < 0 ? err : 0;
	umi_ucp_request_param_t p = { 0 };
	r->wrote = true;
	return post(r, umi_ucp.put_nbx(r->ep, src, len, r->addr + offset, r->rkey, &p),
		    "ucp_put_nbx");
}

int unimem_remote_wait(unimem_remote *r)
{
	if (!r)
		return umi_net_note(EINVAL, "NULL handle");
	int err = wait_pending(r);
	if (!err && r->wrote && r->ep && !r->broken) {
		umi_ucp_request_param_t p = { 0 };
		err = wait_req(r, umi_ucp.ep_flush_nbx(r->ep, &p), "ucp_ep_flush_nbx");
	}
	r->wrote = false;
	if (!err && r->broken)
		err = umi_net_note(ENOTCONN, "this handle lost its exporter");
	return err;
}

int unimem_remote_set_timeout(unimem_remote *r, unsigned ms)
{
	if (!r || ms == 0)
		return umi_net_note(EINVAL, "NULL handle or a timeout of 0");
	r->timeout_ms = ms;
	return 0;
}

void unimem_remote_close(unimem_remote *r)
{
	if (r)
		remote_free(r);
}
