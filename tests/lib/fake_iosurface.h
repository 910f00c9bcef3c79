/* SPDX-License-Identifier: MIT */
/* A fake IOSurface.framework, CoreFoundation and allocator for testing src/os/darwin/ on
 * Linux. It implements exactly the declarations of src/os/darwin/decls.h (the compiler
 * checks each definition against them), records every call, counts live objects and can be told
 * to fail. block.c and iosurface.c are compiled with -Dcalloc=fake_calloc -Dfree=fake_free. */
#ifndef UNIMEM_FAKE_IOSURFACE_H
#define UNIMEM_FAKE_IOSURFACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "os/darwin/decls.h"

enum fake_op {
	FAKE_CALLOC,
	FAKE_FREE,
	FAKE_NUMBER_CREATE,
	FAKE_DICT_CREATE,
	FAKE_RELEASE,
	FAKE_SURFACE_CREATE,
	FAKE_LOOKUP,
	FAKE_LOCK,
	FAKE_UNLOCK,
	FAKE_GET_ID,
	FAKE_GET_BASE,
	FAKE_GET_SIZE,
};

/* Kinds of fake CF object (the `arg` of a FAKE_RELEASE call). */
enum fake_kind { FAKE_STRING = 1, FAKE_NUMBER, FAKE_DICT, FAKE_SURFACE };

struct fake_call {
	enum fake_op op;
	const void *obj;   /* the object the call was about (or returned) */
	uint64_t arg;      /* lock options, release kind, calloc size, ... */
};

#define FAKE_MAX_CALLS 256

struct fake_state {
	/* Knobs: set before the call under test. */
	bool fail_calloc;
	bool fail_number;
	bool fail_dict;
	bool fail_create;              /* IOSurfaceCreate returns NULL */
	kern_return_t lock_result;     /* what IOSurfaceLock returns (it locks only on success) */
	size_t alloc_extra;            /* IOSurface allocates this much more than asked */
	size_t alloc_short;            /* ... or this much less */
	size_t base_offset;            /* the base address is this far past a 16 KiB boundary */
	bool null_base;                /* IOSurfaceGetBaseAddress returns NULL */

	/* What happened. */
	struct fake_call calls[FAKE_MAX_CALLS];
	size_t ncalls;
	int live_callocs;              /* fake_calloc blocks not yet freed */
	int live_numbers;
	int live_dicts;
	int live_surfaces;             /* IOSurfaceRefs (each create or lookup makes one) */
	int live_buffers;              /* the memory behind them, shared by every ref */
	int locks_held;                /* locks not yet unlocked, over all refs */
	int violations;                /* misuse: see fake_iosurface.c */
	const char *last_violation;

	/* The properties the last IOSurfaceCreate got. */
	CFIndex dict_count;
	const void *dict_key;
	CFNumberType number_type;
	int64_t number_value;
	const void *dict_key_callbacks;
	const void *dict_value_callbacks;
};

extern struct fake_state fake;

void fake_reset(void);

/* How many calls of `op` were recorded. */
size_t fake_count(enum fake_op op);

/* Index of the first call of `op` about `obj` (any object when obj is NULL) at or after
 * `from`, or (size_t)-1. */
size_t fake_find(enum fake_op op, const void *obj, size_t from);

/* A surface made behind unimem's back (as another framework would), held by the fake:
 * returns its id. fake_drop_surface releases that hold. */
IOSurfaceID fake_make_surface(size_t alloc_size, size_t base_offset);
void fake_drop_surface(IOSurfaceID id);

void *fake_calloc(size_t count, size_t size);
void fake_free(void *ptr);

#endif
