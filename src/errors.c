/* SPDX-License-Identifier: MIT */
/* unimem_strerror and unimem_version. */
#define _GNU_SOURCE
#include "internal.h"
#if defined(__linux__)
#include "net_internal.h"
#endif

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#if defined(__APPLE__) || defined(__linux__)
_Static_assert(UNIMEM_EINVAL == EINVAL, "UNIMEM_EINVAL must match <errno.h>");
_Static_assert(UNIMEM_EALREADY == EALREADY, "UNIMEM_EALREADY must match <errno.h>");
#endif

#ifndef UNIMEM_VERSION_STRING
#error "the build defines UNIMEM_VERSION_STRING"
#endif

static _Thread_local size_t memlock_asked;
static _Thread_local char message[512];

void umi_note_memlock_refusal(size_t asked)
{
	memlock_asked = asked;
}

static void limit_text(char *buf, size_t len, rlim_t v)
{
	if (v == RLIM_INFINITY)
		snprintf(buf, len, "unlimited");
	else
		snprintf(buf, len, "%llu bytes", (unsigned long long)v);
}

const char *unimem_strerror(int err)
{
	if (err == INT_MIN) { /* no positive counterpart (negating it is undefined) */
		snprintf(message, sizeof message, "unknown error %d", err);
		return message;
	}
	if (err < 0)
		err = -err;
	const char *gpu = umi_gpu_strerror(err);
	if (gpu)
		return gpu;
#if defined(__linux__)
	const char *net = umi_net_strerror(err);
	if (net)
		return net;
#endif
	switch (err) {
	case 0:
		return "success";
#if defined(__APPLE__)
	case EPERM:
		return "operation not permitted: the IOSurface lock (pinning) was refused; "
		       "open the Block with UNIMEM_BLOCK_UNPINNED";
#else
	case EPERM: {
		struct rlimit rl;
		char cur[48] = "unknown", asked[64] = "";
		if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0)
			limit_text(cur, sizeof cur, rl.rlim_cur);
		if (memlock_asked)
			snprintf(asked, sizeof asked, " to pin %zu bytes", memlock_asked);
		snprintf(message, sizeof message,
			 "operation not permitted: the locked-memory limit RLIMIT_MEMLOCK (%s) is "
			 "too small%s; raise it (ulimit -l, limits.conf, systemd LimitMEMLOCK=) or "
			 "open the Block with UNIMEM_BLOCK_UNPINNED",
			 cur, asked);
		return message;
	}
#endif
	case EINVAL:
		return "invalid argument: a NULL or foreign pointer, a size of 0, a size whose "
		       "rounding overflows, or an unknown flag";
	case ENOMEM:
		return "out of memory: the system cannot back a Block of this size";
	case ENOSYS:
		return "not implemented on this platform or in this version of unimem";
	case ENOENT:
		return "no Block has this id";
	case EACCES:
		return "permission denied: the Block belongs to another user (or its process is "
		       "not dumpable: it changed its uid, runs set-uid, or set PR_SET_DUMPABLE 0)";
	case EBADMSG:
		return "bad message: what came over the socket is not a Block sent by "
		       "unimem_block_send (no fd or several, not a memfd sealed against shrink "
		       "and grow, not writable, or a size that does not match), or the file is "
		       "not a well-formed safetensors file (header length, JSON, fields, dtype, "
		       "offsets, or data that the tensors do not cover exactly)";
	case ENOSPC:
		return "no space left in the Tape for what is loaded into it";
	case ERANGE:
		return "the view reaches outside its Block (offset, shape and strides)";
	case ECONNRESET:
		return "connection closed: the peer closed the socket before a Block came";
	case ENODEV:
		return "no GPU: no CUDA driver or no device";
	case EALREADY:
		return "the cell is already in the pool (given twice)";
	case ENOTSUP:
		return "not supported: on macOS, Blocks go by IOSurface, not over sockets; "
		       "a DLPack export of an element type DLPack 0.8 has no code for (8-bit "
		       "floats); a tensor of more than 8 dimensions; or O_DIRECT refused by the "
		       "file system (UNIMEM_READ_DIRECT)";
	case EMFILE:
		return "too many open files: no file descriptor left for the Block";
	default:
		break;
	}
#if defined(__APPLE__)
	/* XSI strerror_r: returns an int. */
	if (strerror_r(err, message, sizeof message) != 0)
		snprintf(message, sizeof message, "unknown error %d", err);
#else
	/* GNU strerror_r: returns the message, not always in our buffer. */
	const char *s = strerror_r(err, message, sizeof message);
	if (s != message)
		snprintf(message, sizeof message, "%s", s);
#endif
	return message;
}

const char *unimem_version(void)
{
	return UNIMEM_VERSION_STRING;
}
