/* SPDX-License-Identifier: MIT */
/* unimem: shared macros for the public headers. Freestanding: no libc includes. */
#ifndef UNIMEM_COMMON_H
#define UNIMEM_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#if defined(_WIN32)
#error "unimem supports Linux and macOS"
#endif

/* Exported symbols: the library is built with hidden visibility. */
#define UNIMEM_API __attribute__((visibility("default")))

/* Hot paths live in the headers. libunimem-ffi (src/ffi.c) defines UNIMEM_INLINE first
 * to compile the same functions out of line, for callers that cannot inline (ctypes). */
#ifndef UNIMEM_INLINE
#define UNIMEM_INLINE static inline __attribute__((always_inline))
#endif
#define UNIMEM_PVT_INLINE static inline __attribute__((always_inline))

#define UNIMEM_LIKELY(x) __builtin_expect(!!(x), 1)
#define UNIMEM_UNLIKELY(x) __builtin_expect(!!(x), 0)

#ifdef __cplusplus
#define UNIMEM_BEGIN_DECLS extern "C" {
#define UNIMEM_END_DECLS }
#else
#define UNIMEM_BEGIN_DECLS
#define UNIMEM_END_DECLS
#endif

/* The errno values the inline hot paths return. The public headers include no libc
 * header, so they are spelled here per platform; src/errors.c checks them against
 * <errno.h> at compile time. */
#if defined(__APPLE__)
#define UNIMEM_EINVAL 22
#define UNIMEM_EALREADY 37
#else
#define UNIMEM_EINVAL 22
#define UNIMEM_EALREADY 114
#endif

#define UNIMEM_CACHE_LINE 64

/* A compile-time check that works in C11 and C++11 alike. */
#ifdef __cplusplus
#define UNIMEM_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define UNIMEM_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

#endif
