/* SPDX-License-Identifier: MIT */
/* A fake IOSurface.framework and CoreFoundation that record every call (see
 * fake_iosurface.h). It models what src/os/darwin/iosurface.c relies on: CF reference counting, a
 * dictionary that retains its keys and values (kCFType callbacks), IOSurfaceCreate that
 * reads kIOSurfaceAllocSize, IOSurfaceLookup that returns a new retained ref to the same
 * memory, zero-filled page-aligned memory that lives while any ref does, and balanced
 * lock/unlock with matching options. Misuse that the real frameworks would punish
 * (CFRelease(NULL), releasing a ref still locked, unlocking what is not locked, options
 * that differ between lock and unlock, a malformed property dictionary, touching a dead
 * object) is counted in fake.violations. */
#include "fake_iosurface.h"

#include <stdlib.h>
#include <string.h>

#define FAKE_PAGE ((size_t)16 << 10)
#define MAGIC 0x46414b45u /* "FAKE" */
#define MAX_BUFFERS 64

struct fake_obj {
	uint32_t magic;
	enum fake_kind kind;
	int refs;
};

struct umi_cf_string {
	struct fake_obj h;
	const char *name;
};

struct umi_cf_number {
	struct fake_obj h;
	CFNumberType type;
	int64_t value;
};

#define DICT_MAX 4
struct umi_cf_dictionary {
	struct fake_obj h;
	CFIndex count;
	const void *keys[DICT_MAX];
	const void *values[DICT_MAX];
};

struct umi_cf_dictionary_key_callbacks {
	CFIndex version;
};
struct umi_cf_dictionary_value_callbacks {
	CFIndex version;
};

/* The memory of one surface, shared by every IOSurfaceRef to it. */
struct fake_buffer {
	IOSurfaceID id;
	unsigned char *mem;
	unsigned char *base;
	size_t size;
	int users;  /* refs alive; the fake's own hold from fake_make_surface counts too */
	bool held;  /* fake_make_surface's hold */
};

struct umi_iosurface {
	struct fake_obj h;
	struct fake_buffer *buf;
	int locks;
	IOSurfaceLockOptions options;
};

struct fake_state fake;

static struct umi_cf_string alloc_size_key = { { MAGIC, FAKE_STRING, 1 }, "IOSurfaceAllocSize" };
const CFStringRef kIOSurfaceAllocSize = &alloc_size_key;
const CFDictionaryKeyCallBacks kCFTypeDictionaryKeyCallBacks = { 0 };
const CFDictionaryValueCallBacks kCFTypeDictionaryValueCallBacks = { 0 };

static struct fake_buffer buffers[MAX_BUFFERS];
static size_t nbuffers;
static IOSurfaceID next_id = 0x100;

static void violation(const char *what)
{
	fake.violations++;
	fake.last_violation = what;
}

static void record(enum fake_op op, const void *obj, uint64_t arg)
{
	if (fake.ncalls < FAKE_MAX_CALLS)
		fake.calls[fake.ncalls] = (struct fake_call){ op, obj, arg };
	else
		violation("call log full");
	fake.ncalls++;
}

void fake_reset(void)
{
	for (size_t i = 0; i < nbuffers; i++)
		free(buffers[i].mem);
	memset(buffers, 0, sizeof buffers);
	nbuffers = 0;
	memset(&fake, 0, sizeof fake);
}

size_t fake_count(enum fake_op op)
{
	size_t n = 0;
	for (size_t i = 0; i < fake.ncalls && i < FAKE_MAX_CALLS; i++)
		n += fake.calls[i].op == op;
	return n;
}

size_t fake_find(enum fake_op op, const void *obj, size_t from)
{
	for (size_t i = from; i < fake.ncalls && i < FAKE_MAX_CALLS; i++)
		if (fake.calls[i].op == op && (!obj || fake.calls[i].obj == obj))
			return i;
	return (size_t)-1;
}

/* The object behind a CF reference, or NULL (and a violation) when it is not a live one. */
static struct fake_obj *live(const void *cf, enum fake_kind kind)
{
	struct fake_obj *o = (struct fake_obj *)(uintptr_t)cf;
	if (!o || o->magic != MAGIC || o->refs <= 0 || (kind && o->kind != kind)) {
		violation("not a live CF object of the expected kind");
		return NULL;
	}
	return o;
}

static void retain(const void *cf)
{
	struct fake_obj *o = live(cf, 0);
	if (o && o->kind != FAKE_STRING)
		o->refs++;
}

void *fake_calloc(size_t count, size_t size)
{
	record(FAKE_CALLOC, NULL, (uint64_t)count * size);
	if (fake.fail_calloc)
		return NULL;
	void *p = calloc(count, size);
	if (p)
		fake.live_callocs++;
	return p;
}

void fake_free(void *ptr)
{
	record(FAKE_FREE, ptr, 0);
	if (ptr)
		fake.live_callocs--;
	free(ptr);
}

CFNumberRef CFNumberCreate(CFAllocatorRef allocator, CFNumberType theType, const void *valuePtr)
{
	if (allocator)
		violation("CFNumberCreate: unexpected allocator");
	if (fake.fail_number) {
		record(FAKE_NUMBER_CREATE, NULL, (uint64_t)theType);
		return NULL;
	}
	struct umi_cf_number *n = calloc(1, sizeof *n);
	if (!n)
		abort();
	n->h = (struct fake_obj){ MAGIC, FAKE_NUMBER, 1 };
	n->type = theType;
	if (theType == kCFNumberSInt64Type)
		memcpy(&n->value, valuePtr, sizeof n->value);
	else
		violation("CFNumberCreate: only kCFNumberSInt64Type is modelled");
	fake.live_numbers++;
	record(FAKE_NUMBER_CREATE, n, (uint64_t)theType);
	return n;
}

CFDictionaryRef CFDictionaryCreate(CFAllocatorRef allocator, const void **keys,
				   const void **values, CFIndex numValues,
				   const CFDictionaryKeyCallBacks *keyCallBacks,
				   const CFDictionaryValueCallBacks *valueCallBacks)
{
	if (allocator)
		violation("CFDictionaryCreate: unexpected allocator");
	if (numValues < 0 || numValues > DICT_MAX || (numValues && (!keys || !values))) {
		violation("CFDictionaryCreate: bad arguments");
		return NULL;
	}
	if (fake.fail_dict) {
		record(FAKE_DICT_CREATE, NULL, (uint64_t)numValues);
		return NULL;
	}
	struct umi_cf_dictionary *d = calloc(1, sizeof *d);
	if (!d)
		abort();
	d->h = (struct fake_obj){ MAGIC, FAKE_DICT, 1 };
	d->count = numValues;
	/* Only the kCFType callbacks retain; the fake accepts nothing else. */
	if (keyCallBacks != &kCFTypeDictionaryKeyCallBacks ||
	    valueCallBacks != &kCFTypeDictionaryValueCallBacks)
		violation("CFDictionaryCreate: not the kCFType callbacks");
	for (CFIndex i = 0; i < numValues; i++) {
		retain(keys[i]);
		retain(values[i]);
		d->keys[i] = keys[i];
		d->values[i] = values[i];
	}
	fake.live_dicts++;
	fake.dict_key_callbacks = keyCallBacks;
	fake.dict_value_callbacks = valueCallBacks;
	record(FAKE_DICT_CREATE, d, (uint64_t)numValues);
	return d;
}

static void buffer_put(struct fake_buffer *buf)
{
	if (--buf->users == 0) {
		free(buf->mem);
		buf->mem = buf->base = NULL;
		fake.live_buffers--;
	}
}

void CFRelease(CFTypeRef cf)
{
	if (!cf) {
		violation("CFRelease(NULL) crashes");
		record(FAKE_RELEASE, NULL, 0);
		return;
	}
	struct fake_obj *o = live(cf, 0);
	record(FAKE_RELEASE, cf, o ? (uint64_t)o->kind : 0);
	if (!o || o->kind == FAKE_STRING || --o->refs > 0)
		return;
	switch (o->kind) {
	case FAKE_NUMBER:
		fake.live_numbers--;
		break;
	case FAKE_DICT: {
		struct umi_cf_dictionary *d = (struct umi_cf_dictionary *)o;
		for (CFIndex i = 0; i < d->count; i++) {
			CFRelease(d->keys[i]);
			CFRelease(d->values[i]);
		}
		fake.live_dicts--;
		break;
	}
	case FAKE_SURFACE: {
		struct umi_iosurface *s = (struct umi_iosurface *)o;
		if (s->locks) {
			violation("IOSurfaceRef released while still locked");
			fake.locks_held -= s->locks;
		}
		buffer_put(s->buf);
		fake.live_surfaces--;
		break;
	}
	default:
		break;
	}
	o->magic = 0; /* a later use is caught by live() */
	free(o);
}

static struct fake_buffer *buffer_new(size_t size, size_t base_offset)
{
	if (nbuffers == MAX_BUFFERS)
		return NULL;
	struct fake_buffer *buf = &buffers[nbuffers++];
	size_t span = size + base_offset;
	span = (span + FAKE_PAGE - 1) & ~(FAKE_PAGE - 1);
	buf->mem = aligned_alloc(FAKE_PAGE, span ? span : FAKE_PAGE);
	if (!buf->mem)
		abort();
	memset(buf->mem, 0, span); /* the kernel's pages come zero-filled */
	buf->base = buf->mem + base_offset;
	buf->size = size;
	buf->id = next_id++;
	buf->users = 1;
	fake.live_buffers++;
	return buf;
}

static struct umi_iosurface *surface_new(struct fake_buffer *buf)
{
	struct umi_iosurface *s = calloc(1, sizeof *s);
	if (!s)
		abort();
	s->h = (struct fake_obj){ MAGIC, FAKE_SURFACE, 1 };
	s->buf = buf;
	fake.live_surfaces++;
	return s;
}

IOSurfaceRef IOSurfaceCreate(CFDictionaryRef properties)
{
	const struct umi_cf_dictionary *d = (const void *)live(properties, FAKE_DICT);
	if (!d) {
		record(FAKE_SURFACE_CREATE, NULL, 0);
		return NULL;
	}
	/* A dimensionless buffer: kIOSurfaceAllocSize is required; it is all unimem gives. */
	fake.dict_count = d->count;
	fake.dict_key = d->count ? d->keys[0] : NULL;
	const struct umi_cf_number *n = NULL;
	for (CFIndex i = 0; i < d->count; i++)
		if (d->keys[i] == kIOSurfaceAllocSize)
			n = (const void *)live(d->values[i], FAKE_NUMBER);
	if (!n) {
		violation("IOSurfaceCreate: no kIOSurfaceAllocSize number");
		record(FAKE_SURFACE_CREATE, NULL, 0);
		return NULL;
	}
	fake.number_type = n->type;
	fake.number_value = n->value;
	if (fake.fail_create || n->value <= 0) {
		record(FAKE_SURFACE_CREATE, NULL, (uint64_t)n->value);
		return NULL;
	}
	size_t size = (size_t)n->value + fake.alloc_extra - fake.alloc_short;
	struct fake_buffer *buf = buffer_new(size, fake.base_offset);
	if (!buf) {
		record(FAKE_SURFACE_CREATE, NULL, (uint64_t)n->value);
		return NULL;
	}
	struct umi_iosurface *s = surface_new(buf);
	record(FAKE_SURFACE_CREATE, s, (uint64_t)n->value);
	return s;
}

IOSurfaceRef IOSurfaceLookup(IOSurfaceID csid)
{
	for (size_t i = 0; i < nbuffers; i++) {
		if (buffers[i].id == csid && buffers[i].users > 0) {
			buffers[i].users++;
			struct umi_iosurface *s = surface_new(&buffers[i]);
			record(FAKE_LOOKUP, s, csid);
			return s;
		}
	}
	record(FAKE_LOOKUP, NULL, csid);
	return NULL;
}

IOSurfaceID IOSurfaceGetID(IOSurfaceRef buffer)
{
	struct umi_iosurface *s = (void *)live(buffer, FAKE_SURFACE);
	record(FAKE_GET_ID, buffer, 0);
	return s ? s->buf->id : 0;
}

kern_return_t IOSurfaceLock(IOSurfaceRef buffer, IOSurfaceLockOptions options, uint32_t *seed)
{
	struct umi_iosurface *s = (void *)live(buffer, FAKE_SURFACE);
	record(FAKE_LOCK, buffer, options);
	if (!s)
		return DARWIN_kIOReturnBadArgument;
	if (fake.lock_result != DARWIN_KERN_SUCCESS)
		return fake.lock_result;
	if (s->locks && options != s->options)
		violation("IOSurfaceLock: options differ from the lock held");
	s->options = options;
	s->locks++;
	fake.locks_held++;
	if (seed)
		*seed = 1;
	return DARWIN_KERN_SUCCESS;
}

kern_return_t IOSurfaceUnlock(IOSurfaceRef buffer, IOSurfaceLockOptions options, uint32_t *seed)
{
	struct umi_iosurface *s = (void *)live(buffer, FAKE_SURFACE);
	record(FAKE_UNLOCK, buffer, options);
	if (!s)
		return DARWIN_kIOReturnBadArgument;
	if (!s->locks) {
		violation("IOSurfaceUnlock: not locked");
		return DARWIN_kIOReturnCannotLock;
	}
	if (options != s->options)
		violation("IOSurfaceUnlock: options differ from IOSurfaceLock's");
	s->locks--;
	fake.locks_held--;
	if (seed)
		*seed = 2;
	return DARWIN_KERN_SUCCESS;
}

size_t IOSurfaceGetAllocSize(IOSurfaceRef buffer)
{
	struct umi_iosurface *s = (void *)live(buffer, FAKE_SURFACE);
	record(FAKE_GET_SIZE, buffer, 0);
	return s ? s->buf->size : 0;
}

void *IOSurfaceGetBaseAddress(IOSurfaceRef buffer)
{
	struct umi_iosurface *s = (void *)live(buffer, FAKE_SURFACE);
	record(FAKE_GET_BASE, buffer, 0);
	return s && !fake.null_base ? s->buf->base : NULL;
}

IOSurfaceID fake_make_surface(size_t alloc_size, size_t base_offset)
{
	struct fake_buffer *buf = buffer_new(alloc_size, base_offset);
	if (!buf)
		abort();
	buf->held = true;
	return buf->id;
}

void fake_drop_surface(IOSurfaceID id)
{
	for (size_t i = 0; i < nbuffers; i++)
		if (buffers[i].id == id && buffers[i].held && buffers[i].users > 0) {
			buffers[i].held = false;
			buffer_put(&buffers[i]);
		}
}
