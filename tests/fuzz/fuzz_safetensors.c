/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the safetensors loader on arbitrary files. The input's first byte picks
 * the alignment; the rest is the file, written to a memfd and loaded through its
 * /proc/self/fd path into a Tape. A refusal must be one the contract names and take nothing
 * from the Tape; a load must give views that are valid, inside the Tape's part that it took,
 * found by their names, and exportable; nothing leaks (fds; heap through LeakSanitizer).
 * Built as fuzz_api.c is (tests/fuzz/meson.build); replay.c runs corpus-safetensors/. */
#include <unimem/unimem.h>
#include <unimem/safetensors.h>
#include <unimem/view.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<dlpack/dlpack.h>)
#include <dlpack/dlpack.h>
#define HAVE_DLPACK 1
#endif
#endif

#include "helpers.h"

#define TAPE_BYTES (1u << 20)

#define CHECK(cond, ...)                                                                      \
	do {                                                                                  \
		if (!(cond)) {                                                                \
			fprintf(stderr, "fuzz_safetensors: %s:%d: check failed: %s: ", __FILE__, \
				__LINE__, #cond);                                             \
			fprintf(stderr, __VA_ARGS__);                                         \
			fputc('\n', stderr);                                                  \
			abort();                                                              \
		}                                                                             \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unimem_tape *t;
	if (!t)
		CHECK(unimem_tape_start_flags(&t, TAPE_BYTES, UNIMEM_BLOCK_UNPINNED) == 0, "tape");
	unimem_tape_clear(t);
	int fds = count_fds();

	static const size_t aligns[] = { 0, 1, 2, 4, 8, 16, 64, 4096, 3, 100 };
	size_t align = size ? aligns[data[0] % (sizeof aligns / sizeof aligns[0])] : 0;
	unsigned flags = size && data[0] & 0x80 ? UNIMEM_READ_BUFFERED : 0;
	const uint8_t *file = size ? data + 1 : data;
	size_t len = size ? size - 1 : 0;

	int fd = memfd_create("fuzz_safetensors", MFD_CLOEXEC);
	CHECK(fd >= 0, "memfd");
	for (size_t off = 0; off < len;) {
		ssize_t w = write(fd, file + off, len - off);
		CHECK(w > 0, "write");
		off += (size_t)w;
	}
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);

	unimem_safetensors *st = (unimem_safetensors *)0x1;
	int err = unimem_safetensors_load(&st, t, path, align, flags);
	if (align & (align - 1)) {
		CHECK(err == -EINVAL, "align %zu gave %d", align, err);
	}
	if (err) {
		CHECK(err == -EBADMSG || err == -ENOTSUP || err == -ENOSPC || err == -EINVAL,
		      "load gave %d", err);
		CHECK(st == NULL, "out-parameter not NULL after %d", err);
		CHECK(unimem_tape_used(t) == 0, "a refused load took %zu bytes", unimem_tape_used(t));
	} else {
		const unimem_block *b = unimem_tape_block(t);
		unsigned char *lo = t->base, *hi = lo + unimem_tape_used(t);
		size_t n = unimem_safetensors_count(st);
		for (size_t i = 0; i < n; i++) {
			const unimem_view *v = unimem_safetensors_view(st, i);
			const char *name = unimem_safetensors_name(st, i);
			CHECK(v && name, "tensor %zu", i);
			CHECK(v->block == b, "tensor %zu is not in the Tape's Block", i);
			CHECK(unimem_view_check(v) == 0, "tensor %zu does not check", i);
			size_t esize = unimem_dtype_size(v->dtype);
			CHECK(esize > 0 && unimem_dtype_name(v->dtype), "tensor %zu dtype %d", i, v->dtype);
			unsigned char *p = unimem_view_ptr(v);
			uint64_t count = unimem_view_count(v);
			CHECK(count == 0 || (p >= lo && p <= hi && count * esize <= (size_t)(hi - p)),
			      "tensor %zu (%p, %llu x %zu) outside what the load took [%p, %p)", i,
			      (void *)p, (unsigned long long)count, esize, (void *)lo, (void *)hi);
			/* align 0: UNIMEM_SAFETENSORS_ALIGN; never less than the element. */
			size_t want = align ? align : UNIMEM_SAFETENSORS_ALIGN;
			want = want > esize ? want : esize;
			CHECK(count == 0 || (uintptr_t)p % want == 0,
			      "tensor %zu at %p not aligned to %zu", i, (void *)p, want);
			/* The bytes are readable (ASan would see a read outside the mapping). */
			volatile unsigned char sink = count ? p[0] ^ p[count * esize - 1] : 0;
			(void)sink;
			const unimem_view *found = unimem_safetensors_find(st, name);
			CHECK(found && found->offset == v->offset && found->dtype == v->dtype,
			      "find(\"%s\") is not tensor %zu", name, i);
#ifdef HAVE_DLPACK
			DLManagedTensor *m = NULL;
			int e = unimem_view_to_dlpack(v, 0, &m);
			if (!e) {
				CHECK(m && m->dl_tensor.data, "DLPack export of tensor %zu", i);
				m->deleter(m);
			} else {
				CHECK(e == -ENOTSUP && !m, "DLPack export of tensor %zu gave %d", i, e);
			}
#endif
		}
		CHECK(!unimem_safetensors_view(st, n) && !unimem_safetensors_name(st, n), "past the end");
		for (size_t i = 0;; i++) {
			const char *key = unimem_safetensors_metadata_key(st, i);
			if (!key)
				break;
			CHECK(unimem_safetensors_metadata(st, key), "metadata key \"%s\" has no value", key);
		}
		CHECK(unimem_safetensors_moved(st) <= n, "moved");
		unimem_safetensors_close(st);
	}
	close(fd);
	CHECK(count_fds() == fds, "fd leaked: %d open, %d before", count_fds(), fds);
	return 0;
}
