/* SPDX-License-Identifier: MIT */
/* Block, macOS backend: one IOSurface per Block, locked once at open so that the same
 * pages serve the CPU, the GPU (Metal) and the Neural Engine. Talks to IOSurface and
 * CoreFoundation through the raw declarations of darwin_decls.h: it compiles with
 * clang's freestanding headers alone. Not yet run on Apple hardware (docs/MACOS.md). */
#include "internal.h"
#include "darwin_decls.h"

#if defined(__APPLE__)
_Static_assert(DARWIN_EINVAL == UNIMEM_EINVAL, "macOS EINVAL is 22");
_Static_assert(DARWIN_EALREADY == UNIMEM_EALREADY, "macOS EALREADY is 37");
#endif

#define KNOWN_FLAGS (UNIMEM_BLOCK_UNPINNED | UNIMEM_BLOCK_HUGE)

/* Apple Silicon pages are 16 KiB. Sizes round to 16 KiB on every Mac: a multiple of the
 * 4 KiB pages of Intel Macs too, and right for x86-64 code under Rosetta, whose
 * getpagesize() says 4 KiB on a 16 KiB kernel. There are no huge pages to ask for. */
#define PAGE ((size_t)16 << 10)

/* IOSurfaceLock options: read-write, synchronised with other users of the surface.
 * IOSurfaceUnlock must get the same options. */
#define LOCK_OPTIONS ((IOSurfaceLockOptions)0)

size_t umi_page_size(void)
{
	return PAGE;
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
		return -DARWIN_EPERM;
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
	return 0;
}

int unimem_block_open(unimem_block **out, size_t bytes, unsigned flags)
{
	if (!out)
		return -DARWIN_EINVAL;
	*out = NULL;
	if (bytes == 0 || (flags & ~(unsigned)KNOWN_FLAGS))
		return -DARWIN_EINVAL;
	size_t size = umi_round_up(bytes, PAGE);
	if (!size)
		return -DARWIN_EINVAL;
	if (size > (size_t)INT64_MAX) /* a CFNumber of kCFNumberSInt64Type cannot say it */
		return -DARWIN_ENOMEM;

	unimem_block *b = calloc(1, sizeof *b);
	if (!b)
		return -DARWIN_ENOMEM;
	/* IOSurface has no way to tell why it failed: a surface the system cannot make is
	 * a size it cannot back. */
	IOSurfaceRef s = create_surface(size);
	if (!s) {
		free(b);
		return -DARWIN_ENOMEM;
	}
	/* The kernel hands the surface zero-filled pages, so the Block starts zeroed. */
	int err = adopt(b, s, size, !(flags & UNIMEM_BLOCK_UNPINNED), -DARWIN_ENOMEM);
	if (err) {
		free(b);
		return err;
	}
	*out = b;
	return 0;
}

/* IOSurfaceLookup finds surfaces this task may see: those of this process, and, across
 * processes, only surfaces made global (kIOSurfaceIsGlobal, deprecated since 10.11 as
 * insecure), which unimem never makes. A Block therefore reaches another process through
 * unimem_block_handle() and IOSurfaceCreateMachPort() or IOSurfaceCreateXPCObject(). */
int unimem_block_lookup(unimem_block **out, uint32_t id)
{
	if (!out)
		return -DARWIN_EINVAL;
	*out = NULL;
	if (id == 0)
		return -DARWIN_ENOENT;
	unimem_block *b = calloc(1, sizeof *b);
	if (!b)
		return -DARWIN_ENOMEM;
	IOSurfaceRef s = IOSurfaceLookup(id);
	if (!s) {
		free(b);
		return -DARWIN_ENOENT;
	}
	/* Pinned by the same rule as a default open. A surface too small to hold one page,
	 * or not page aligned, was not made by unimem_block_open(). */
	int err = adopt(b, s, PAGE, true, -DARWIN_EINVAL);
	if (err) {
		free(b);
		return err;
	}
	*out = b;
	return 0;
}

void unimem_block_close(unimem_block *b)
{
	/* DLPack exports hold the Block too (view.c): the last holder tears it down. */
	if (!b || !umi_block_unref(b))
		return;
	umi_gpu_release(b);
	if (b->pinned)
		IOSurfaceUnlock(b->handle, LOCK_OPTIONS, NULL);
	/* Drops this holder's reference only: other holders keep the surface. */
	CFRelease(b->handle);
	free(b);
}

void *unimem_block_ptr(const unimem_block *b)
{
	return b ? b->ptr : NULL;
}

size_t unimem_block_size(const unimem_block *b)
{
	return b ? b->size : 0;
}

size_t unimem_block_page_size(const unimem_block *b)
{
	return b ? b->page : 0;
}

bool unimem_block_pinned(const unimem_block *b)
{
	return b && b->pinned;
}

uint32_t unimem_block_id(const unimem_block *b)
{
	return b ? b->id : 0;
}

void *unimem_block_handle(const unimem_block *b)
{
	return b ? b->handle : NULL;
}

/* An IOSurface has no file descriptor. */
int unimem_block_fd(const unimem_block *b)
{
	(void)b;
	return -1;
}

/* A Unix-domain socket carries file descriptors (SCM_RIGHTS), and an IOSurface has none:
 * on macOS it travels as a Mach port (IOSurfaceCreateMachPort) or an XPC object
 * (IOSurfaceCreateXPCObject), which no AF_UNIX socket can carry. So send and recv are
 * not supported here, by design rather than for now. */
int unimem_block_send(int unix_socket, const unimem_block *b)
{
	(void)unix_socket;
	return b ? -DARWIN_ENOTSUP : -DARWIN_EINVAL;
}

int unimem_block_recv(unimem_block **out, int unix_socket)
{
	(void)unix_socket;
	if (!out)
		return -DARWIN_EINVAL;
	*out = NULL;
	return -DARWIN_ENOTSUP;
}

int unimem_block_recv_max(unimem_block **out, int unix_socket, uint64_t max_bytes)
{
	(void)max_bytes;
	return unimem_block_recv(out, unix_socket);
}

int unimem_block_lookup_max(unimem_block **out, uint32_t id, uint64_t max_bytes)
{
	(void)max_bytes;
	return unimem_block_lookup(out, id);
}

/* IOSurfaces have no seals: read-only sharing is not offered here. */
int unimem_block_seal(unimem_block *b)
{
	return b ? -DARWIN_ENOTSUP : -DARWIN_EINVAL;
}

bool unimem_block_writable(const unimem_block *b)
{
	return b != NULL;
}
