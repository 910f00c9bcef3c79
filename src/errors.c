/* SPDX-License-Identifier: MIT */
/* unimem_strerror, the error-detail channel, and unimem_version. A sink: calls no other
 * file of unimem. */
#define _POSIX_C_SOURCE 200809L /* XSI strerror_r, on glibc as on macOS */
#include "base.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

_Static_assert(UNIMEM_EINVAL == EINVAL, "UNIMEM_EINVAL must match <errno.h>");
_Static_assert(UNIMEM_EALREADY == EALREADY, "UNIMEM_EALREADY must match <errno.h>");

#ifndef UNIMEM_VERSION_STRING
#error "the build defines UNIMEM_VERSION_STRING"
#endif

/* This thread's last recorded failure: its code (positive; 0: none) and what went wrong. */
static _Thread_local int detail_err;
static _Thread_local char detail[320];
static _Thread_local char message[512];

int umi_fail(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof detail, fmt, ap);
	va_end(ap);
	detail_err = err == INT_MIN ? 0 : err < 0 ? -err : err;
	return err;
}

void umi_fail_clear(void)
{
	detail_err = 0;
}

const char *umi_fail_detail(int err)
{
	const int e = err == INT_MIN ? 0 : err < 0 ? -err : err;
	return e && detail_err == e ? detail : "";
}

/* What a code is, and every cause unimem has for it (said when no detail was recorded). */
struct text {
	int err;
	const char *what, *causes;
};

static const struct text texts[] = {
	{ EPERM, "operation not permitted",
	  "pinning was refused: the locked-memory limit RLIMIT_MEMLOCK is too small (raise it: "
	  "ulimit -l, limits.conf, systemd LimitMEMLOCK=), or on macOS the IOSurface lock was "
	  "refused; or open the Block with UNIMEM_BLOCK_UNPINNED" },
	{ EINVAL, "invalid argument",
	  "a NULL or foreign pointer, a size of 0, a size whose rounding overflows, or an "
	  "unknown flag" },
	{ ENOMEM, "out of memory",
	  "the system cannot back a Block of this size (at open, or the size a peer announced "
	  "to unimem_block_recv/_lookup, refused before any page was touched)" },
	{ ENOENT, "no such Block", "no Block has this id" },
	{ EACCES, "permission denied",
	  "the Block belongs to another user (or its process is not dumpable: it changed its "
	  "uid, runs set-uid, or set PR_SET_DUMPABLE 0)" },
	{ EBADMSG, "bad message",
	  "what came over the socket is not a Block sent by unimem_block_send (no fd or "
	  "several, not a memfd sealed against shrink and grow, neither writable nor sealed "
	  "read-only by unimem_block_seal, or a size that does not match), or the file is not "
	  "a well-formed safetensors file (header length, JSON, fields, dtype, offsets, or data "
	  "that the tensors do not cover exactly)" },
	{ ENOSPC, "no space", "no space left in the Tape for what is loaded into it" },
	{ ERANGE, "out of range", "the view reaches outside its Block (offset, shape and strides)" },
	{ ECONNRESET, "connection closed", "the peer closed the socket before a Block came" },
	{ EFBIG, "too big",
	  "the Block is larger than the max_bytes given to unimem_block_recv_max/_lookup_max "
	  "(refused before any page was touched)" },
	{ ETIMEDOUT, "timed out",
	  "a Block message began on a blocking socket and its rest did not come within 2 s (the "
	  "peer stalled); the stream is out of step, close it" },
	{ EBUSY, "busy",
	  "the Block cannot be sealed any more (another holder of its fd added F_SEAL_SEAL)" },
	{ EAGAIN, "try again",
	  "the non-blocking socket is not ready (send: full; recv: no Block message yet, or "
	  "only part of one, and then what came is consumed: close the stream)" },
	{ ENODEV, "no GPU", "no CUDA driver or no device" },
	{ ENXIO, "not mapped", "the Block is not mapped to a GPU: call unimem_gpu_map() first" },
	{ EALREADY, "already given", "the cell is already in the pool (given twice)" },
	{ ENOTSUP, "not supported",
	  "on macOS, Blocks go by IOSurface, not over sockets; a DLPack export of an element "
	  "type DLPack 0.8 has no code for (8-bit floats); a tensor of more than 8 dimensions; "
	  "or O_DIRECT refused by the file system (UNIMEM_READ_DIRECT)" },
	{ EMFILE, "too many open files", "no file descriptor left for the Block" },
};

const char *unimem_strerror(int err)
{
	if (err == INT_MIN) { /* no positive counterpart (negating it is undefined) */
		snprintf(message, sizeof message, "unknown error %d", err);
		return message;
	}
	if (err < 0)
		err = -err;
	if (err == 0)
		return "success";
	const struct text *t = NULL;
	for (size_t i = 0; i < sizeof texts / sizeof texts[0] && !t; i++)
		if (texts[i].err == err)
			t = &texts[i];
	bool said = detail_err == err && detail[0];
	if (t && !said)
		snprintf(message, sizeof message, "%s: %s", t->what, t->causes);
	else if (t)
		snprintf(message, sizeof message, "%s: %s", t->what, detail);
	else {
		char sys[128];
		if (strerror_r(err, sys, sizeof sys) != 0)
			snprintf(sys, sizeof sys, "unknown error %d", err);
		if (said)
			snprintf(message, sizeof message, "%s: %s", sys, detail);
		else
			snprintf(message, sizeof message, "%s", sys);
	}
	return message;
}

const char *unimem_version(void)
{
	return UNIMEM_VERSION_STRING;
}
