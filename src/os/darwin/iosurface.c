/* SPDX-License-Identifier: MIT */
/* Block, macOS backend: one IOSurface per Block, locked once at open so that the same
 * pages serve the CPU, the GPU (Metal) and the Neural Engine. Talks to IOSurface and
 * CoreFoundation through the raw declarations of decls.h: it compiles with clang's
 * freestanding headers alone. Not yet run on Apple hardware (docs/MACOS.md). */
#include "os/os.h"
#include "decls.h"

#if defined(__APPLE__)
_Static_assert(DARWIN_EINVAL == UNIMEM_EINVAL, "macOS EINVAL is 22");
_Static_assert(DARWIN_EALREADY == UNIMEM_EALREADY, "macOS EALREADY is 37");
#endif

/* Apple Silicon pages are 16 KiB. Sizes round to 16 KiB on every Mac: a multiple of the
 * 4 KiB pages of Intel Macs too, and right for x86-64 code under Rosetta, whose
 * getpagesize() says 4 KiB on a 16 KiB kernel. There are no huge pages to ask for. */
#define PAGE ((size_t)16 << 10)

/* IOSurfaceLock options: read-write, synchronised with other users of the surface.
 * IOSurfaceUnlock must get the same options. */
#define LOCK_OPTIONS ((IOSurfaceLockOptions)0)

size_t umi_os_page_size(void)
{
	return PAGE;
}

/* Not measured here: helpers are not started (the work runs on the calling thread). */
long umi_os_idle_cpus(void)
{
	return 0;
}

/* Not asked here (the reads that would ask use no O_DIRECT on macOS): cannot be told. */
int umi_os_resident(const void *p, size_t len, unsigned char *vec)
{
	(void)p;
	(void)len;
	(void)vec;
	return -1;
}

/* An IOSurface of `size` bytes (a multiple of PAGE), or NULL. The properties are a
 * dictionary of one entry, kIOSurfaceAllocSize, as a 64-bit CFNumber: a buffer with no
 * width, height or pixel format. Releases everything it made but the surface. */
static IOSurfaceRef create_surface(size_t size)
{
	int64_t n = (int64_t)size;
	CFNumberRef number = CFNumberCreate(NULL, kCFNumberSInt64Type, &n);
	if (!number)
		return NULL;
	const void *keys[1] = { kIOSurfaceAllocSize };
	const void *values[1] = { number };
	CFDictionaryRef props = CFDictionaryCreate(NULL, keys, values, 1,
						   &kCFTypeDictionaryKeyCallBacks,
						   &kCFTypeDictionaryValueCallBacks);
	CFRelease(number); /* the dictionary holds its own reference, if it was made */
	if (!props)
		return NULL;
	IOSurfaceRef s = IOSurfaceCreate(props);
	CFRelease(props);
	return s;
}

/* A refused IOSurfaceLock as a negative errno. */
static int lock_error(kern_return_t kr)
{
	switch (kr) {
	case DARWIN_kIOReturnNoMemory:
	case DARWIN_kIOReturnNoResources:
		return -DARWIN_ENOMEM;
	case DARWIN_kIOReturnNotPrivileged:
	case DARWIN_kIOReturnNotPermitted:
		return umi_fail(-DARWIN_EPERM, "the IOSurface lock (pinning) was refused; open the "
				"Block with UNIMEM_BLOCK_UNPINNED");
	default:
		return -DARWIN_EIO;
	}
}

/* Make b the holder of the reference `s`: lock it when pinning, then read its address
 * and size. The usable size is the allocation rounded down to PAGE; it must reach
 * `min_size`, and the base must be page aligned, or `bad` is returned. On any failure
 * the lock (if taken) and the reference are released: the caller only frees b. */
static int adopt(unimem_block *b, IOSurfaceRef s, size_t min_size, bool pin, int bad)
{
	if (pin) {
		kern_return_t kr = IOSurfaceLock(s, LOCK_OPTIONS, NULL);
		if (kr != DARWIN_KERN_SUCCESS) {
			CFRelease(s);
			return lock_error(kr);
		}
	}
	unsigned char *base = IOSurfaceGetBaseAddress(s);
	size_t usable = IOSurfaceGetAllocSize(s) & ~(PAGE - 1);
	if (!base || ((uintptr_t)base & (PAGE - 1)) != 0 || usable == 0 || usable < min_size) {
		if (pin)
			IOSurfaceUnlock(s, LOCK_OPTIONS, NULL);
		CFRelease(s);
		return bad;
	}
	b->handle = s;
	b->ptr = base;
	b->size = usable;
	b->page = PAGE;
	b->fd = -1;
	b->id = IOSurfaceGetID(s);
	b->pinned = pin;
	b->writable = true;
	return 0;
}

int umi_os_create(unimem_block *b, size_t size, unsigned flags, bool pin)
{
	(void)flags; /* no huge pages to ask for; every surface is this task's until it sends it */
	/* IOSurface has no way to tell why it failed: a surface the system cannot make is
	 * a size it cannot back. */
	IOSurfaceRef s = create_surface(size);
	if (!s)
		return -DARWIN_ENOMEM;
	/* The kernel hands the surface zero-filled pages, so the Block starts zeroed. */
	return adopt(b, s, size, pin, -DARWIN_ENOMEM);
}

/* IOSurfaceLookup finds surfaces this task may see: those of this process, and, across
 * processes, only surfaces made global (kIOSurfaceIsGlobal, deprecated since 10.11 as
 * insecure), which unimem never makes. A Block therefore reaches another process through
 * unimem_block_handle() and IOSurfaceCreateMachPort() or IOSurfaceCreateXPCObject(). */
int umi_os_lookup(unimem_block *b, uint32_t id, uint64_t max, bool pin)
{
	(void)max;
	IOSurfaceRef s = IOSurfaceLookup(id);
	if (!s)
		return -DARWIN_ENOENT;
	/* A surface too small to hold one page, or not page aligned, was not made by
	 * unimem_block_open(). */
	return adopt(b, s, PAGE, pin, -DARWIN_EINVAL);
}

void umi_os_destroy(unimem_block *b)
{
	if (b->pinned)
		IOSurfaceUnlock(b->handle, LOCK_OPTIONS, NULL);
	/* Drops this holder's reference only: other holders keep the surface. */
	CFRelease(b->handle);
}

/* A Unix-domain socket carries file descriptors (SCM_RIGHTS), and an IOSurface has none:
 * on macOS it travels as a Mach port (IOSurfaceCreateMachPort) or an XPC object
 * (IOSurfaceCreateXPCObject), which no AF_UNIX socket can carry. So send and recv are
 * not supported here, by design rather than for now. */
int umi_os_send(int unix_socket, const unimem_block *b)
{
	(void)unix_socket;
	(void)b;
	return -DARWIN_ENOTSUP;
}

int umi_os_recv(unimem_block *b, int unix_socket, uint64_t max, bool pin)
{
	(void)b;
	(void)unix_socket;
	(void)max;
	(void)pin;
	return -DARWIN_ENOTSUP;
}

/* IOSurfaces have no seals: read-only sharing is not offered here. */
int umi_os_seal(unimem_block *b)
{
	(void)b;
	return -DARWIN_ENOTSUP;
}
