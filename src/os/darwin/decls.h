/* SPDX-License-Identifier: MIT */
/* The parts of libSystem, CoreFoundation and IOSurface.framework that iosurface.c
 * uses, declared by hand so that the macOS backend compiles with clang's freestanding
 * headers alone: no SDK, no libc headers, no Objective-C. Never installed.
 *
 * Written from Apple's published headers and checked against them (see docs/MACOS.md):
 * IOSurface/IOSurfaceRef.h and IOSurfaceTypes.h (macOS 11 SDK), CoreFoundation CFBase.h,
 * CFNumber.h, CFDictionary.h, xnu bsd/sys/errno.h, IOKit/IOReturn.h, mach kern_return.h.
 * Only the ABI has to match: C has no name mangling, so our own struct tags stand in for
 * Apple's opaque ones, and the callback structs, whose address is all we pass, stay
 * incomplete. */
#ifndef UNIMEM_DARWIN_DECLS_H
#define UNIMEM_DARWIN_DECLS_H

#include <stddef.h>
#include <stdint.h>

/* libSystem (<stdlib.h>; <signal.h> and <errno.h> for proc.c). */
void *calloc(size_t count, size_t size);
void free(void *ptr);
int kill(int pid, int sig);
int *__error(void); /* errno */

/* errno values of macOS (<sys/errno.h>). Several differ from Linux's (ENOTSUP is 95 there,
 * ENOSYS 38), so the backend never takes them from a host's <errno.h>. */
#define DARWIN_EPERM 1
#define DARWIN_ENOENT 2
#define DARWIN_ESRCH 3
#define DARWIN_EIO 5
#define DARWIN_ENOMEM 12
#define DARWIN_EACCES 13
#define DARWIN_EINVAL 22
#define DARWIN_EALREADY 37
#define DARWIN_ENOTSUP 45
#define DARWIN_ENOSYS 78

/* mach: kern_return_t is an int on every Darwin architecture; IOReturn is the same type.
 * IOKit's common errors are iokit_common_err(n) = err_system(0x38) | n = 0xe0000000 | n. */
typedef int kern_return_t;
#define DARWIN_KERN_SUCCESS 0
#define DARWIN_IORETURN(n) ((kern_return_t)(0xe0000000u | (n)))
#define DARWIN_kIOReturnNoMemory DARWIN_IORETURN(0x2bdu)
#define DARWIN_kIOReturnNoResources DARWIN_IORETURN(0x2beu)
#define DARWIN_kIOReturnNotPrivileged DARWIN_IORETURN(0x2c1u)
#define DARWIN_kIOReturnBadArgument DARWIN_IORETURN(0x2c2u)
#define DARWIN_kIOReturnCannotLock DARWIN_IORETURN(0x2ccu)
#define DARWIN_kIOReturnNotPermitted DARWIN_IORETURN(0x2e2u)

/* CoreFoundation (CFBase.h). CFIndex is `signed long` on LP64 Darwin (arm64, x86_64). */
typedef signed long CFIndex;
typedef const void *CFTypeRef;
typedef const struct umi_cf_allocator *CFAllocatorRef; /* NULL: the default allocator */
typedef const struct umi_cf_string *CFStringRef;

/* Releases one reference; `cf` must not be NULL. */
void CFRelease(CFTypeRef cf);

/* CFNumber.h: CFNumberType is a CFIndex enum; kCFNumberSInt64Type is 4. */
typedef CFIndex CFNumberType;
enum { kCFNumberSInt64Type = 4 };
typedef const struct umi_cf_number *CFNumberRef;

/* Create rule: the caller owns the result; NULL on failure. */
CFNumberRef CFNumberCreate(CFAllocatorRef allocator, CFNumberType theType, const void *valuePtr);

/* CFDictionary.h. */
typedef const struct umi_cf_dictionary *CFDictionaryRef;
typedef struct umi_cf_dictionary_key_callbacks CFDictionaryKeyCallBacks;
typedef struct umi_cf_dictionary_value_callbacks CFDictionaryValueCallBacks;

/* Callbacks that retain and release CF objects: the dictionary holds its own
 * references to its keys and values. */
extern const CFDictionaryKeyCallBacks kCFTypeDictionaryKeyCallBacks;
extern const CFDictionaryValueCallBacks kCFTypeDictionaryValueCallBacks;

/* Create rule: the caller owns the result; NULL on failure. */
CFDictionaryRef CFDictionaryCreate(CFAllocatorRef allocator, const void **keys,
				   const void **values, CFIndex numValues,
				   const CFDictionaryKeyCallBacks *keyCallBacks,
				   const CFDictionaryValueCallBacks *valueCallBacks);

/* IOSurface (IOSurfaceTypes.h, IOSurfaceRef.h); all available since macOS 10.6.
 * IOSurfaceRef is a CF type: CFRelease releases it. */
typedef struct umi_iosurface *IOSurfaceRef;
typedef uint32_t IOSurfaceID;
typedef uint32_t IOSurfaceLockOptions; /* 0: read-write, synchronised */

/* CFNumber: total allocation size in bytes; required for a buffer without dimensions. */
extern const CFStringRef kIOSurfaceAllocSize;

/* Create rule; NULL on failure. */
IOSurfaceRef IOSurfaceCreate(CFDictionaryRef properties);
/* Looks the surface up and retains it (a new IOSurfaceRef each time); NULL if the id
 * names nothing this task may see. */
IOSurfaceRef IOSurfaceLookup(IOSurfaceID csid);
IOSurfaceID IOSurfaceGetID(IOSurfaceRef buffer);
/* Bracket CPU access; each lock is matched by an unlock with the same options. */
kern_return_t IOSurfaceLock(IOSurfaceRef buffer, IOSurfaceLockOptions options, uint32_t *seed);
kern_return_t IOSurfaceUnlock(IOSurfaceRef buffer, IOSurfaceLockOptions options, uint32_t *seed);
/* 0 for an invalid buffer. */
size_t IOSurfaceGetAllocSize(IOSurfaceRef buffer);
void *IOSurfaceGetBaseAddress(IOSurfaceRef buffer);

#endif
