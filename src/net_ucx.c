/* SPDX-License-Identifier: MIT */
/* unimem_net, exporting side: UCX (libucp.so.0) loaded with dlopen, one context per
 * process, one worker served by a progress thread of the library while anything is
 * exported, one listener and one registration (ucp_mem_map) per exported Block. */
#define _GNU_SOURCE
#include "base.h"
#include "block_pvt.h"
#include "net_pvt.h"
#include "net_internal.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

struct umi_ucp umi_ucp;
umi_ucp_context_h umi_ucp_ctx;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int load_err;          /* 0 once loaded; -ENOSYS otherwise */
static pid_t load_pid;
static char no_ucx_why[256];

int umi_net_note(int err, const char *text)
{
	return umi_fail(-err, "%s", text);
}

static int errno_of(umi_ucs_status s)
{
	switch (s) {
	case UMI_UCS_ERR_UNREACHABLE: return EHOSTUNREACH;
	case UMI_UCS_ERR_REJECTED: return ECONNREFUSED;
	case UMI_UCS_ERR_CONNECTION_RESET: return ECONNRESET;
	/* What UCX reports when the peer closed or died: for us, a reset. */
	case UMI_UCS_ERR_ENDPOINT_TIMEOUT: return ECONNRESET;
	case UMI_UCS_ERR_TIMED_OUT: return ETIMEDOUT;
	case UMI_UCS_ERR_NOT_CONNECTED: return ENOTCONN;
	case UMI_UCS_ERR_CANCELED: return ECONNRESET; /* requests of a closed connection */
	case UMI_UCS_ERR_NO_MEMORY: return ENOMEM;
	case UMI_UCS_ERR_INVALID_PARAM: return EINVAL;
	case UMI_UCS_ERR_INVALID_ADDR: return EADDRNOTAVAIL;
	case UMI_UCS_ERR_BUSY: return EADDRINUSE;
	case UMI_UCS_ERR_UNSUPPORTED: return ENOTSUP;
	default: return EIO;
	}
}

int umi_net_fail(umi_ucs_status s, const char *call)
{
	char text[224];
	snprintf(text, sizeof text, "UCX, %s: %s", call,
		 umi_ucp.status_string ? umi_ucp.status_string(s) : "error");
	return umi_net_note(errno_of(s), text);
}

unsigned umi_net_default_timeout(void)
{
	const char *e = secure_getenv("UNIMEM_NET_TIMEOUT_MS");
	if (e && *e) {
		char *end;
		unsigned long v = strtoul(e, &end, 10);
		if (*end == '\0' && v > 0 && v <= 86400000ul)
			return (unsigned)v;
	}
	return 10000;
}

/* UCX's defaults that cost Block transfers most, and ours, unless the environment sets
 * them (`env`; bench/bench_net.c gives ucx_perftest the same values): over tcp, UCX sends
 * in 8 KiB segments (every one a system call and a header on each side), which held
 * reads and writes of 64 KiB-64 MiB between two network namespaces to 0.6-1.1 GB/s;
 * 256 KiB segments sent into 1 MiB receive buffers moved 2.8-4.7 GB/s there, for
 * ucx_perftest too (docs/BENCHMARKS.md, "UCX's tcp segments"). The buffers are taken
 * per connection while data moves, and given back when it stops. */
static const struct {
	const char *key, *env, *value; /* key: as ucp_config_modify takes it for tcp */
} tuning[] = {
	{"TX_SEG_SIZE", "UCX_TCP_TX_SEG_SIZE", "256K"},
	{"RX_SEG_SIZE", "UCX_TCP_RX_SEG_SIZE", "1M"},
};

static void tune(umi_ucp_config_t *config)
{
	for (size_t i = 0; i < sizeof tuning / sizeof tuning[0]; i++)
		if (!getenv(tuning[i].env))
			(void)umi_ucp.config_modify(config, tuning[i].key, tuning[i].value);
}

static void load(void)
{
	load_err = -ENOSYS;
	const char *lib = secure_getenv("UNIMEM_UCP_LIBRARY");
	if (!lib || !*lib)
		lib = "libucp.so.0";
	void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *e = dlerror();
		snprintf(no_ucx_why, sizeof no_ucx_why, "%s could not be loaded (%s)", lib,
			 e ? e : "?");
		return;
	}
	static const struct {
		const char *name;
		size_t at;
	} need[] = {
#define E(f, n) { n, offsetof(struct umi_ucp, f) }
		E(init_version, "ucp_init_version"), E(cleanup, "ucp_cleanup"),
		E(config_read, "ucp_config_read"), E(config_modify, "ucp_config_modify"),
		E(config_release, "ucp_config_release"),
		E(worker_create, "ucp_worker_create"), E(worker_destroy, "ucp_worker_destroy"),
		E(worker_progress, "ucp_worker_progress"), E(worker_get_efd, "ucp_worker_get_efd"),
		E(worker_arm, "ucp_worker_arm"), E(worker_signal, "ucp_worker_signal"),
		E(listener_create, "ucp_listener_create"),
		E(listener_destroy, "ucp_listener_destroy"),
		E(listener_query, "ucp_listener_query"), E(listener_reject, "ucp_listener_reject"),
		E(ep_create, "ucp_ep_create"), E(ep_close_nbx, "ucp_ep_close_nbx"),
		E(ep_flush_nbx, "ucp_ep_flush_nbx"),
		E(request_check_status, "ucp_request_check_status"),
		E(request_free, "ucp_request_free"), E(mem_map, "ucp_mem_map"),
		E(mem_unmap, "ucp_mem_unmap"), E(rkey_pack, "ucp_rkey_pack"),
		E(rkey_buffer_release, "ucp_rkey_buffer_release"),
		E(ep_rkey_unpack, "ucp_ep_rkey_unpack"), E(rkey_destroy, "ucp_rkey_destroy"),
		E(get_nbx, "ucp_get_nbx"), E(put_nbx, "ucp_put_nbx"),
		E(status_string, "ucs_status_string"), /* libucs.so.0, a dependency */
#undef E
	};
	for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
		void *p = dlsym(h, need[i].name);
		if (!p) {
			snprintf(no_ucx_why, sizeof no_ucx_why, "%s lacks %s (UCX 1.13 or later "
				 "is needed)", lib, need[i].name);
			memset(&umi_ucp, 0, sizeof umi_ucp);
			dlclose(h);
			return;
		}
		memcpy((char *)&umi_ucp + need[i].at, &p, sizeof p);
	}
	umi_ucp_params_t p = {
		.field_mask = UMI_UCP_PARAM_FIELD_FEATURES | UMI_UCP_PARAM_FIELD_MT_WORKERS_SHARED |
			      UMI_UCP_PARAM_FIELD_NAME,
		.features = UMI_UCP_FEATURE_RMA | UMI_UCP_FEATURE_WAKEUP,
		.mt_workers_shared = 1,
		.name = "unimem",
	};
	umi_ucp_config_t *config = NULL;
	if (umi_ucp.config_read(NULL, NULL, &config) != UMI_UCS_OK)
		config = NULL;
	else
		tune(config);
	umi_ucs_status s = umi_ucp.init_version(1, 13, &p, config, &umi_ucp_ctx);
	if (config)
		umi_ucp.config_release(config);
	if (s != UMI_UCS_OK) {
		snprintf(no_ucx_why, sizeof no_ucx_why, "ucp_init of %s failed: %s", lib,
			 umi_ucp.status_string(s));
		return; /* stays loaded: status_string serves the message */
	}
	load_pid = getpid();
	load_err = 0;
}

int umi_net_ready(void)
{
	pthread_once(&once, load);
	if (load_err)
		return umi_fail(-ENOSYS, "unimem_net needs UCX: %s", no_ucx_why);
	if (getpid() != load_pid)
		return umi_net_note(ENOTSUP, "UCX was set up before this process was forked: "
				    "a forked child cannot use its parent's UCX state");
	return 0;
}

/* ---- the exporting side ------------------------------------------------------------ */

struct served {
	umi_ucp_ep_h ep;
	struct export *x;
	bool dead;          /* its error handler ran: closed by the progress thread */
	struct served *next;
};

struct export {
	const void *key;           /* the Block here, or the helper's entry (net_serve.c) */
	size_t size;
	void *addr;                /* what is registered: the pages, or a read-only alias */
	void *alias;               /* the PROT_READ mapping of a read-only export, or NULL */
	umi_ucp_mem_h memh;
	umi_ucp_listener_h listener;
	struct export *next;
};

static pthread_mutex_t xlock = PTHREAD_MUTEX_INITIALIZER; /* exports; start, stop */
static pthread_mutex_t wlock = PTHREAD_MUTEX_INITIALIZER; /* the worker */
static pthread_cond_t wcond = PTHREAD_COND_INITIALIZER;
static struct export *exports;
atomic_size_t umi_net_exported;      /* here and in the helper: the close hook reads it */
static umi_ucp_worker_h xworker;
static int xefd = -1;
static pthread_t xthread;
static atomic_bool xstop;
static atomic_int xwant;             /* threads waiting for the worker */
static struct served *served;        /* under wlock */

static void served_error(void *arg, umi_ucp_ep_h ep, umi_ucs_status s)
{
	(void)ep;
	(void)s;
	((struct served *)arg)->dead = true;
}

/* Under wlock (the progress thread): an importer connects to export x. */
static void on_conn(umi_ucp_conn_request_h req, void *arg)
{
	struct export *x = arg;
	struct served *c = calloc(1, sizeof *c);
	if (!c) {
		umi_ucp.listener_reject(x->listener, req);
		return;
	}
	umi_ucp_ep_params_t p = {
		.field_mask = UMI_UCP_EP_PARAM_FIELD_CONN_REQUEST |
			      UMI_UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
			      UMI_UCP_EP_PARAM_FIELD_ERR_HANDLER,
		.conn_request = req,
		.err_mode = UMI_UCP_ERR_HANDLING_MODE_PEER,
		.err_handler = { served_error, c },
	};
	if (umi_ucp.ep_create(xworker, &p, &c->ep) != UMI_UCS_OK) {
		free(c);
		return;
	}
	c->x = x;
	c->next = served;
	served = c;
}

/* Close endpoints (under wlock): all of export x, or (x NULL) the dead ones, or all
 * (everything true). Waits for the closes to finish, bounded. */
static void close_served(struct export *x, bool everything)
{
	void *reqs[64];
	int n = 0;
	for (struct served **pc = &served; *pc;) {
		struct served *c = *pc;
		bool go = everything || (x ? c->x == x : c->dead);
		if (!go) {
			pc = &c->next;
			continue;
		}
		*pc = c->next;
		umi_ucp_request_param_t p = { .op_attr_mask = UMI_UCP_OP_ATTR_FIELD_FLAGS,
					      .flags = UMI_UCP_EP_CLOSE_FLAG_FORCE };
		void *r = umi_ucp.ep_close_nbx(c->ep, &p);
		free(c);
		if (UMI_PTR_IS_PTR(r)) {
			if (n == 64) { /* keep the number of pending closes bounded */
				while (umi_ucp.request_check_status(reqs[n - 1]) == UMI_UCS_INPROGRESS)
					umi_ucp.worker_progress(xworker);
				umi_ucp.request_free(reqs[--n]);
			}
			reqs[n++] = r;
		}
	}
	/* A forced close completes locally; a few rounds of progress finish it. */
	for (int i = 0; i < n; i++) {
		for (int k = 0; k < 100000 &&
				umi_ucp.request_check_status(reqs[i]) == UMI_UCS_INPROGRESS; k++)
			umi_ucp.worker_progress(xworker);
		umi_ucp.request_free(reqs[i]);
	}
}

#define SPIN_NS 200000u

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void *progress_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&wlock);
	while (!atomic_load(&xstop)) {
		/* Poll while traffic comes (sleeping on the event fd between the fragments of
		 * a transfer halves its speed over tcp); sleep after SPIN_NS without any. */
		uint64_t idle_since = now_ns();
		while (atomic_load(&xwant) == 0 && !atomic_load(&xstop)) {
			if (umi_ucp.worker_progress(xworker))
				idle_since = now_ns();
			else if (now_ns() - idle_since > SPIN_NS)
				break;
		}
		bool reap = false;
		for (struct served *c = served; c; c = c->next)
			reap |= c->dead;
		if (reap)
			close_served(NULL, false);
		if (atomic_load(&xwant) > 0) {
			/* Another thread wants the worker: let it in, then go on. */
			while (atomic_load(&xwant) > 0)
				pthread_cond_wait(&wcond, &wlock);
			continue;
		}
		if (umi_ucp.worker_arm(xworker) == UMI_UCS_ERR_BUSY)
			continue;
		pthread_mutex_unlock(&wlock);
		struct pollfd pf = { .fd = xefd, .events = POLLIN };
		poll(&pf, 1, 1000);
		pthread_mutex_lock(&wlock);
	}
	pthread_mutex_unlock(&wlock);
	return NULL;
}

/* Take the worker from the progress thread (or while there is none). */
static void worker_enter(void)
{
	atomic_fetch_add(&xwant, 1);
	umi_ucp.worker_signal(xworker);
	pthread_mutex_lock(&wlock);
}

static void worker_leave(void)
{
	atomic_fetch_sub(&xwant, 1);
	pthread_cond_broadcast(&wcond);
	pthread_mutex_unlock(&wlock);
}

/* Under xlock: the worker and its thread, made at the first export. */
static int exporter_start(void)
{
	if (xworker)
		return 0;
	umi_ucp_worker_params_t p = { .field_mask = UMI_UCP_WORKER_PARAM_FIELD_THREAD_MODE,
				      .thread_mode = UMI_UCS_THREAD_MODE_SERIALIZED };
	umi_ucs_status s = umi_ucp.worker_create(umi_ucp_ctx, &p, &xworker);
	if (s != UMI_UCS_OK) {
		xworker = NULL;
		return umi_net_fail(s, "ucp_worker_create");
	}
	s = umi_ucp.worker_get_efd(xworker, &xefd);
	int err = s == UMI_UCS_OK ? 0 : umi_net_fail(s, "ucp_worker_get_efd");
	atomic_store(&xstop, false);
	if (!err && (err = pthread_create(&xthread, NULL, progress_main, NULL)) != 0)
		err = umi_net_note(err, "the progress thread could not be started");
	if (err) {
		umi_ucp.worker_destroy(xworker);
		xworker = NULL;
	}
	return err;
}

/* Under xlock, with no export left: stop the thread, close everything, drop the worker. */
static void exporter_stop(void)
{
	if (!xworker)
		return;
	atomic_store(&xstop, true);
	umi_ucp.worker_signal(xworker);
	pthread_join(xthread, NULL);
	close_served(NULL, true);
	umi_ucp.worker_destroy(xworker);
	xworker = NULL;
	xefd = -1;
}

/* The address to listen on and advertise: UNIMEM_NET_ADDR, else the first IPv4 address
 * of an interface that is up and not loopback, else 127.0.0.1 (w: the exporting process's
 * UNIMEM_NET_ADDR and UNIMEM_NET_PORT, NULL or "" when unset). */
static int pick_addr(const struct umi_net_where *w, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof *ss);
	struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
	unsigned long port = 0;
	const char *pe = w->port;
	if (pe && *pe) {
		char *end;
		port = strtoul(pe, &end, 10);
		if (*end || port > 65535)
			return umi_net_note(EADDRNOTAVAIL, "UNIMEM_NET_PORT is not a port number");
	}
	const char *e = w->addr;
	if (e && *e) {
		if (inet_pton(AF_INET, e, &v4->sin_addr) == 1) {
			v4->sin_family = AF_INET;
		} else if (inet_pton(AF_INET6, e, &v6->sin6_addr) == 1) {
			v6->sin6_family = AF_INET6;
		} else {
			return umi_net_note(EADDRNOTAVAIL, "UNIMEM_NET_ADDR is not an IPv4 or "
					    "IPv6 address");
		}
	} else {
		v4->sin_family = AF_INET;
		v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		struct ifaddrs *ifa = NULL;
		if (getifaddrs(&ifa) == 0) {
			for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
				if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
				    (i->ifa_flags & IFF_UP) && !(i->ifa_flags & IFF_LOOPBACK)) {
					v4->sin_addr = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
					break;
				}
			}
			freeifaddrs(ifa);
		}
	}
	if (ss->ss_family == AF_INET) {
		v4->sin_port = htons((uint16_t)port);
		*len = sizeof *v4;
	} else {
		v6->sin6_port = htons((uint16_t)port);
		*len = sizeof *v6;
	}
	return 0;
}

static struct export **find(const void *key)
{
	struct export **px = &exports;
	while (*px && (*px)->key != key)
		px = &(*px)->next;
	return px;
}

/* Drop what export x holds (under xlock; x is no longer in the list). */
static void export_free(struct export *x)
{
	if (x->listener || x->memh) {
		worker_enter();
		if (x->listener)
			umi_ucp.listener_destroy(x->listener);
		close_served(x, false);
		worker_leave();
	}
	if (x->memh)
		umi_ucp.mem_unmap(umi_ucp_ctx, x->memh);
	if (x->alias)
		munmap(x->alias, x->size);
	free(x);
}

void umi_net_where_here(struct umi_net_where *w)
{
	const char *a = secure_getenv("UNIMEM_NET_ADDR"), *p = secure_getenv("UNIMEM_NET_PORT");
	snprintf(w->addr, sizeof w->addr, "%s", a ? a : "");
	snprintf(w->port, sizeof w->port, "%s", p ? p : "");
	if (a && strlen(a) >= sizeof w->addr) /* too long to be an address: refused as one */
		snprintf(w->addr, sizeof w->addr, "?");
	if (p && strlen(p) >= sizeof w->port)
		snprintf(w->port, sizeof w->port, "?");
}

int umi_net_export_here(const void *key, void *pages, size_t size, int ro_fd, unsigned flags,
			const struct umi_net_where *w, void *desc, size_t cap, size_t *len)
{
	int err = umi_net_ready();
	if (err)
		return err;
	struct sockaddr_storage ss;
	socklen_t sslen = 0;
	if ((err = pick_addr(w, &ss, &sslen)) != 0)
		return err;
	pthread_mutex_lock(&xlock);
	struct export *x = NULL;
	void *rkey = NULL;
	size_t rkey_len = 0;
	if (*find(key)) {
		err = umi_net_note(EALREADY, "this Block is already exported");
		goto out;
	}
	if ((err = exporter_start()) != 0)
		goto out;
	x = calloc(1, sizeof *x);
	if (!x) {
		err = -ENOMEM;
		goto out;
	}
	x->key = key;
	x->size = size;
	x->addr = pages;
	unsigned prot = UMI_UCP_MEM_MAP_PROT_LOCAL_READ | UMI_UCP_MEM_MAP_PROT_LOCAL_WRITE |
			UMI_UCP_MEM_MAP_PROT_REMOTE_READ;
	if ((flags & UNIMEM_NET_READONLY) && ro_fd >= 0) {
		/* Transports that check no remote access rights (tcp) write wherever a peer
		 * asks: the importers are given a mapping of the pages that cannot be written
		 * (ro_fd -1: the pages given are such a mapping already). */
		x->alias = mmap(NULL, size, PROT_READ, MAP_SHARED, ro_fd, 0);
		if (x->alias == MAP_FAILED) {
			x->alias = NULL;
			err = umi_net_note(errno, "mmap of a read-only view of the Block failed");
			goto out;
		}
		x->addr = x->alias;
	} else if (!(flags & UNIMEM_NET_READONLY)) {
		prot |= UMI_UCP_MEM_MAP_PROT_REMOTE_WRITE;
	}
	umi_ucp_mem_map_params_t mp = {
		.field_mask = UMI_UCP_MEM_MAP_PARAM_FIELD_ADDRESS | UMI_UCP_MEM_MAP_PARAM_FIELD_LENGTH |
			      UMI_UCP_MEM_MAP_PARAM_FIELD_PROT,
		.address = x->addr,
		.length = size,
		.prot = prot,
	};
	umi_ucs_status s = umi_ucp.mem_map(umi_ucp_ctx, &mp, &x->memh);
	if (s != UMI_UCS_OK) {
		x->memh = NULL;
		err = umi_net_fail(s, "ucp_mem_map");
		goto out;
	}
	if ((s = umi_ucp.rkey_pack(umi_ucp_ctx, x->memh, &rkey, &rkey_len)) != UMI_UCS_OK) {
		rkey = NULL;
		err = umi_net_fail(s, "ucp_rkey_pack");
		goto out;
	}
	*len = umi_net_desc_len(rkey_len);
	if (*len > cap || rkey_len > UNIMEM_NET_DESC_MAX) {
		err = umi_net_note(ENOSPC, "the descriptor does not fit in the buffer given "
				   "(*len says how much it needs)");
		goto out;
	}
	umi_ucp_listener_params_t lp = {
		.field_mask = UMI_UCP_LISTENER_PARAM_FIELD_SOCK_ADDR |
			      UMI_UCP_LISTENER_PARAM_FIELD_CONN_HANDLER,
		.sockaddr = { (struct sockaddr *)&ss, sslen },
		.conn_handler = { on_conn, x },
	};
	umi_ucp_listener_attr_t la = { .field_mask = UMI_UCP_LISTENER_ATTR_FIELD_SOCKADDR };
	worker_enter();
	s = umi_ucp.listener_create(xworker, &lp, &x->listener);
	if (s != UMI_UCS_OK) {
		x->listener = NULL;
		err = umi_net_fail(s, "ucp_listener_create");
	} else if ((s = umi_ucp.listener_query(x->listener, &la)) != UMI_UCS_OK) {
		err = umi_net_fail(s, "ucp_listener_query");
	}
	worker_leave();
	if (err)
		goto out;
	struct umi_net_desc d = {
		.version = UMI_NET_VERSION,
		.flags = (uint16_t)flags,
		.size = size,
		.addr = (uint64_t)(uintptr_t)x->addr,
		.family = (uint16_t)ss.ss_family,
		.rkey_len = (uint16_t)rkey_len,
		.rkey = rkey,
	};
	if (ss.ss_family == AF_INET) {
		memcpy(d.ip, &((struct sockaddr_in *)&ss)->sin_addr, 4);
		d.port = ntohs(((struct sockaddr_in *)&la.sockaddr)->sin_port);
	} else {
		memcpy(d.ip, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
		d.port = ntohs(((struct sockaddr_in6 *)&la.sockaddr)->sin6_port);
	}
	umi_net_desc_write(&d, desc);
	x->next = exports;
	exports = x;
	atomic_fetch_add(&umi_net_exported, 1);
	x = NULL;
out:
	if (rkey)
		umi_ucp.rkey_buffer_release(rkey);
	if (x)
		export_free(x);
	if (err && !exports)
		exporter_stop();
	pthread_mutex_unlock(&xlock);
	return err;
}

int umi_net_unexport_here(const void *key)
{
	int err = umi_net_ready();
	if (err)
		return err;
	pthread_mutex_lock(&xlock);
	struct export **px = find(key), *x = *px;
	if (!x) {
		pthread_mutex_unlock(&xlock);
		return umi_net_note(ENOENT, "this Block is not exported");
	}
	*px = x->next;
	export_free(x);
	atomic_fetch_sub(&umi_net_exported, 1);
	if (!exports)
		exporter_stop();
	pthread_mutex_unlock(&xlock);
	return 0;
}

/* Exports go to the helper process (net_helper.c), which contains an abort inside UCX;
 * in this process where there is none, or the Block has no fd to hand it. */
int unimem_net_export(const unimem_block *b, unsigned flags, void *desc, size_t cap,
		      size_t *len)
{
	if (!b || !desc || !len || (flags & ~(unsigned)UNIMEM_NET_READONLY))
		return umi_net_note(EINVAL, "NULL Block, descriptor or length, or unknown flags");
	int err = umi_net_ready();
	if (err)
		return err;
	pthread_mutex_lock(&xlock);
	bool here = *find(b) != NULL;
	pthread_mutex_unlock(&xlock);
	if (here)
		return umi_net_note(EALREADY, "this Block is already exported");
	/* Read-only rests on a mapping that cannot write (see umi_net_export_here), which
	 * only a Block with an fd can have a second time. */
	if ((flags & UNIMEM_NET_READONLY) && b->fd < 0)
		return umi_net_note(ENOTSUP, "a Block without an fd (UNIMEM_BLOCK_PRIVATE) cannot "
					     "be exported read-only: open it shared");
	err = b->fd >= 0 ? umi_net_helper_export(b, flags, desc, cap, len) : 1;
	if (err <= 0)
		return err;
	struct umi_net_where w;
	umi_net_where_here(&w);
	return umi_net_export_here(b, b->ptr, b->size, b->fd, flags, &w, desc, cap, len);
}

int unimem_net_unexport(const unimem_block *b)
{
	if (!b)
		return umi_net_note(EINVAL, "NULL Block");
	int err = umi_net_ready();
	if (err)
		return err;
	err = umi_net_helper_unexport(b);
	return err <= 0 ? err : umi_net_unexport_here(b);
}

/* The Block close hook (block.c): revoke an export of a Block being torn down. */
void umi_net_release(unimem_block *b)
{
	if (atomic_load_explicit(&umi_net_exported, memory_order_acquire) == 0)
		return;
	unimem_net_unexport(b);
}
