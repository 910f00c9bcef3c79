/* SPDX-License-Identifier: MIT */
/* Streaming weights (issue 16), host paths: checkpoints of one file and of shards loaded
 * into host memory through the staging ring (the same chunking as the GPU path, with
 * memcpy for the copy engine), bit-exact, 256-byte aligned; and every error case. The
 * device paths are in test_gpu.c. */
#include <unimem/unimem.h>

#include "helpers.h"
#include "weights_files.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

static char dir[256];

static void make_dir(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof dir, "%s/unimem-weights-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(weights, .init = make_dir, .fini = remove_dir);

static const char *at_dir(const char *name)
{
	static char path[4][512];
	static int k;
	k = (k + 1) % 4;
	snprintf(path[k], sizeof path[k], "%s/%s", dir, name);
	return path[k];
}

/* Odd sizes: 1-byte tensors, a scalar, an empty one, one spanning many 64 KiB chunks,
 * and shapes that are no multiple of anything. */
static const struct wf_tensor model_a[] = {
	{ "embed.weight", "BF16", 2, 2, { 333, 257 } },
	{ "norm.bias", "U8", 1, 1, { 7 } },
	{ "scalar", "F32", 4, 0, { 0 } },
	{ "empty", "F16", 2, 2, { 0, 5 } },
	{ "big", "F32", 4, 2, { 301, 1031 } },
	{ "tail", "I64", 8, 1, { 3 } },
};
#define NA (sizeof model_a / sizeof model_a[0])

static const struct wf_tensor shard1[] = {
	{ "layers.0.w", "F16", 2, 2, { 129, 67 } },
	{ "layers.0.b", "F32", 4, 1, { 67 } },
};
static const struct wf_tensor shard2[] = {
	{ "layers.1.w", "BF16", 2, 2, { 513, 300 } },
	{ "layers.1.b", "I8", 1, 1, { 13 } },
	{ "lm_head", "F32", 4, 2, { 97, 101 } },
};

static void check_loaded(unimem_weights *w, const struct wf_tensor *t, size_t n,
			 size_t first, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		long k = unimem_weights_find(w, t[i].name);
		cr_assert_eq(k, (long)(first + i), "%s", t[i].name);
		cr_assert_str_eq(unimem_weights_name(w, (size_t)k), t[i].name);
		cr_assert_eq(unimem_weights_ndim(w, (size_t)k), t[i].ndim);
		for (int d = 0; d < t[i].ndim; d++)
			cr_assert_eq(unimem_weights_shape(w, (size_t)k)[d], t[i].shape[d]);
		cr_assert_eq(unimem_weights_nbytes(w, (size_t)k), wf_bytes(&t[i]));
		cr_assert_eq(unimem_weights_offset(w, (size_t)k) % UNIMEM_WEIGHTS_ALIGN, 0);
		cr_assert_eq(unimem_weights_offset(w, (size_t)k) + unimem_weights_nbytes(w, (size_t)k) <=
			     unimem_weights_bytes(w), true);
		const unsigned char *p = unimem_weights_ptr(w, (size_t)k);
		cr_assert_not_null(p);
		cr_assert_eq(wf_check(p, t, i, seed), 0, "%s differs", t[i].name);
	}
}

Test(weights, one_file_to_host_memory_bit_exact_and_aligned)
{
	const char *path = at_dir("a.safetensors");
	cr_assert_gt(wf_write(path, model_a, NA, "{\"format\":\"pt\",\"x\":\"y\"}", 1), 0);
	/* 64 KiB chunks and 3 workers: tensors cut across chunks, chunks shared by tensors. */
	setenv("UNIMEM_WEIGHTS_CHUNK", "65536", 1);
	setenv("UNIMEM_WEIGHTS_THREADS", "3", 1);
	for (unsigned flags = 0; flags <= UNIMEM_READ_DIRECT; flags++) {
		unimem_weights *w = NULL;
		int err = unimem_weights_load(&w, path, UNIMEM_WEIGHTS_CPU, NULL, 0, flags);
		if (err == -EOPNOTSUPP && flags == UNIMEM_READ_DIRECT)
			continue; /* tmpfs: no O_DIRECT */
		cr_assert_eq(err, 0, "%s", unimem_strerror(err));
		cr_assert_eq(unimem_weights_count(w), NA);
		cr_assert_eq(unimem_weights_files(w), 1);
		cr_assert_eq(unimem_weights_device(w), UNIMEM_WEIGHTS_CPU);
		cr_assert_gt(unimem_weights_staging(w), 0);
		check_loaded(w, model_a, NA, 0, 1);
		cr_assert_str_eq(unimem_weights_metadata(w, "format"), "pt");
		cr_assert_str_eq(unimem_weights_metadata_key(w, 1), "x");
		cr_assert_null(unimem_weights_metadata_key(w, 2));
		cr_assert_null(unimem_weights_metadata(w, "nope"));
		unimem_weights_close(w);
	}
	unsetenv("UNIMEM_WEIGHTS_CHUNK");
	unsetenv("UNIMEM_WEIGHTS_THREADS");
}

Test(weights, into_a_callers_buffer_and_its_limits)
{
	const char *path = at_dir("a.safetensors");
	cr_assert_gt(wf_write(path, model_a, NA, NULL, 2), 0);
	unimem_weights *w = NULL;
	cr_assert_eq(unimem_weights_open(&w, path, 0), 0);
	size_t bytes = unimem_weights_bytes(w);
	cr_assert_eq(bytes % UNIMEM_WEIGHTS_ALIGN, 0);
	cr_assert_null(unimem_weights_ptr(w, 0)); /* not uploaded yet */
	cr_assert_eq(unimem_weights_device(w), -2);
	unsigned char *buf = aligned_alloc(4096, (bytes + 4095) / 4096 * 4096);
	cr_assert_not_null(buf);
	cr_assert_eq(unimem_weights_upload(w, UNIMEM_WEIGHTS_CPU, buf, bytes - 1), -ENOSPC);
	cr_assert_eq(unimem_weights_upload(w, UNIMEM_WEIGHTS_CPU, buf + 8, bytes), -EINVAL);
	cr_assert_eq(unimem_weights_upload(w, -7, buf, bytes), -ENODEV);
	cr_assert_eq(unimem_weights_upload(w, UNIMEM_WEIGHTS_CPU, buf, bytes), 0);
	cr_assert_eq(unimem_weights_ptr(w, 0), buf + unimem_weights_offset(w, 0));
	check_loaded(w, model_a, NA, 0, 2);
	cr_assert_eq(unimem_weights_upload(w, UNIMEM_WEIGHTS_CPU, buf, bytes), -EALREADY);
	unimem_weights_close(w);
	free(buf);
}

/* The staging ring cannot be mapped (the address space is full): the upload fails with
 * -ENOMEM, leaves nothing behind (no tensor pointer, no staging), and the same handle
 * loads bit-exact once memory is there again. */
Test(weights, a_ring_that_cannot_be_mapped_fails_cleanly)
{
	if (UNIMEM_TEST_ASAN)
		cr_skip("AddressSanitizer reserves terabytes of shadow address space: RLIMIT_AS "
			"cannot be tested under it (the plain, TSan and valgrind runs test it)");
	const char *path = at_dir("a.safetensors");
	cr_assert_gt(wf_write(path, model_a, NA, NULL, 3), 0);
	unimem_weights *w = NULL;
	cr_assert_eq(unimem_weights_open(&w, path, 0), 0);
	size_t bytes = unimem_weights_bytes(w);
	unsigned char *buf = aligned_alloc(4096, (bytes + 4095) / 4096 * 4096);
	cr_assert_not_null(buf);
	memset(buf, 0xa5, bytes);
	/* One worker with two 256 MiB slots: a 512 MiB ring, which 64 MiB of room refuse. */
	setenv("UNIMEM_WEIGHTS_CHUNK", "268435456", 1);
	setenv("UNIMEM_WEIGHTS_THREADS", "1", 1);
	size_t now = (size_t)status_kb("VmSize") * 1024;
	cr_assert_gt(now, 0);
	struct rlimit old, tight;
	cr_assert_eq(getrlimit(RLIMIT_AS, &old), 0);
	tight = old;
	tight.rlim_cur = now + ((size_t)64 << 20);
	cr_assert_eq(setrlimit(RLIMIT_AS, &tight), 0);
	int err = unimem_weights_upload(w, UNIMEM_WEIGHTS_CPU, buf, bytes);
	cr_assert_eq(setrlimit(RLIMIT_AS, &old), 0);
	cr_assert_eq(err, -ENOMEM, "%d: %s", err, unimem_strerror(err));
	cr_assert_null(unimem_weights_ptr(w, 0));
	cr_assert_eq(unimem_weights_staging(w), 0);
	cr_assert_eq(unimem_weights_device(w), -2);
	cr_assert_eq(unimem_weights_upload(w, UNIMEM_WEIGHTS_CPU, buf, bytes), 0);
	check_loaded(w, model_a, NA, 0, 3);
	unimem_weights_close(w);
	unsetenv("UNIMEM_WEIGHTS_CHUNK");
	unsetenv("UNIMEM_WEIGHTS_THREADS");
	free(buf);
}

static void write_shards(unsigned seed)
{
	cr_assert_gt(wf_write(at_dir("model-00001-of-00002.safetensors"), shard1, 2,
			      "{\"format\":\"pt\"}", seed), 0);
	cr_assert_gt(wf_write(at_dir("model-00002-of-00002.safetensors"), shard2, 3,
			      "{\"format\":\"pt\"}", seed + 1), 0);
}

static const char good_index[] =
	"{\"metadata\": {\"total_size\": 12345, \"nested\": [1, -2.5e3, true, null, {\"a\": \"b\"}]},\n"
	" \"weight_map\": {\"layers.1.w\": \"model-00002-of-00002.safetensors\",\n"
	"  \"layers.0.w\": \"model-00001-of-00002.safetensors\",\n"
	"  \"layers.0.b\": \"model-00001-of-00002.safetensors\",\n"
	"  \"layers.1.b\": \"model-00002-of-00002.safetensors\",\n"
	"  \"lm_head\": \"model-00002-of-00002.safetensors\"}}\n";

Test(weights, shards_of_an_index_load_as_one_model)
{
	write_shards(5);
	cr_assert_eq(wf_write_text(at_dir("model.safetensors.index.json"), good_index), 0);
	setenv("UNIMEM_WEIGHTS_CHUNK", "65536", 1);
	const char *paths[] = { at_dir("model.safetensors.index.json"), dir };
	for (size_t p = 0; p < 2; p++) {
		unimem_weights *w = NULL;
		int fds = count_fds();
		int err = unimem_weights_load(&w, paths[p], UNIMEM_WEIGHTS_CPU, NULL, 0, 0);
		cr_assert_eq(err, 0, "%s", unimem_strerror(err));
		cr_assert_eq(unimem_weights_files(w), 2);
		cr_assert_eq(unimem_weights_count(w), 5);
		check_loaded(w, shard1, 2, 0, 5);
		check_loaded(w, shard2, 3, 2, 6);
		cr_assert_str_eq(unimem_weights_metadata(w, "format"), "pt");
		cr_assert_eq(count_fds(), fds); /* the shards are closed once uploaded */
		unimem_weights_close(w);
	}
	unsetenv("UNIMEM_WEIGHTS_CHUNK");
}

static int load_index(const char *text)
{
	cr_assert_eq(wf_write_text(at_dir("bad.index.json"), text), 0);
	unimem_weights *w = (unimem_weights *)1;
	int fds = count_fds();
	int err = unimem_weights_load(&w, at_dir("bad.index.json"), UNIMEM_WEIGHTS_CPU, NULL, 0, 0);
	cr_assert_null(w, "%s", text);
	cr_assert_eq(count_fds(), fds, "%s: %d fds, %d before", text, count_fds(), fds);
	return err;
}

Test(weights, bad_indexes_and_missing_shards_are_refused)
{
	write_shards(1);
	const char *s1 = "\"model-00001-of-00002.safetensors\"", *s2 = "\"model-00002-of-00002.safetensors\"";
	char text[2048];
	/* A shard missing. */
	snprintf(text, sizeof text, "{\"weight_map\": {\"layers.0.w\": %s, \"layers.0.b\": %s, "
		 "\"x\": \"model-00003-of-00003.safetensors\"}}", s1, s1);
	cr_assert_eq(load_index(text), -ENOENT, "%s", text);
	/* A tensor named in the wrong shard; one left out; one not in any shard. */
	snprintf(text, sizeof text, "{\"weight_map\": {\"layers.0.w\": %s, \"layers.0.b\": %s}}", s2, s1);
	cr_assert_eq(load_index(text), -EBADMSG, "%s", text);
	snprintf(text, sizeof text, "{\"weight_map\": {\"layers.0.w\": %s}}", s1);
	cr_assert_eq(load_index(text), -EBADMSG, "%s", text);
	snprintf(text, sizeof text, "{\"weight_map\": {\"layers.0.w\": %s, \"layers.0.b\": %s, "
		 "\"ghost\": %s}}", s1, s1, s1);
	cr_assert_eq(load_index(text), -EBADMSG, "%s", text);
	/* Paths out of the directory. */
	cr_assert_eq(load_index("{\"weight_map\": {\"a\": \"/etc/passwd\"}}"), -EBADMSG, "{\"weight_map\": {\"a\": \"/etc/passwd\"}}");
	cr_assert_eq(load_index("{\"weight_map\": {\"a\": \"../x.safetensors\"}}"), -EBADMSG, "{\"weight_map\": {\"a\": \"../x.safetensors\"}}");
	cr_assert_eq(load_index("{\"weight_map\": {\"a\": \"\"}}"), -EBADMSG, "{\"weight_map\": {\"a\": \"\"}}");
	/* Not JSON, or no weight map. */
	static const char *bad[] = {
		"", "{", "[]", "{\"weight_map\": {}} x", "{\"metadata\": {}}",
		"{\"weight_map\": {\"a\": 1}}", "{\"weight_map\": {\"a\": \"b\",}}",
		"{\"metadata\": 01, \"weight_map\": {}}", "{\"metadata\": \"\\x\", \"weight_map\": {}}",
		"{\"metadata\": \"\\ud800\", \"weight_map\": {}}", "{\"weight_map\": {}, \"weight_map\": {}}",
		"{\"metadata\": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]], \"weight_map\": {}}",
		"{\"metadata\": tru, \"weight_map\": {}}", "{\"metadata\": 1e, \"weight_map\": {}}",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		cr_assert_eq(load_index(bad[i]), -EBADMSG, "%s", bad[i]);
	/* The same tensor name in two shards. */
	static const struct wf_tensor dup[] = { { "layers.0.b", "F32", 4, 1, { 3 } } };
	cr_assert_gt(wf_write(at_dir("dup.safetensors"), dup, 1, NULL, 1), 0);
	snprintf(text, sizeof text, "{\"weight_map\": {\"layers.0.w\": %s, \"layers.0.b\": %s, "
		 "\"layers.0.b\": \"dup.safetensors\"}}", s1, s1);
	cr_assert_eq(load_index(text), -EBADMSG, "%s", text);
	/* An empty map is an empty model. */
	unimem_weights *w = NULL;
	cr_assert_eq(wf_write_text(at_dir("empty.index.json"), "{\"weight_map\": {}}"), 0);
	cr_assert_eq(unimem_weights_load(&w, at_dir("empty.index.json"), UNIMEM_WEIGHTS_CPU, NULL, 0, 0), 0);
	cr_assert_eq(unimem_weights_count(w), 0);
	unimem_weights_close(w);
}

Test(weights, short_files_and_bad_headers_are_refused)
{
	const char *path = at_dir("a.safetensors");
	size_t data = wf_write(path, model_a, NA, NULL, 3);
	cr_assert_gt(data, 0);
	/* Truncated: the tensors no longer cover the data. */
	cr_assert_eq(truncate(path, 8 + 200 + (off_t)data / 2), 0);
	unimem_weights *w = (unimem_weights *)1;
	cr_assert_eq(unimem_weights_load(&w, path, UNIMEM_WEIGHTS_CPU, NULL, 0, 0), -EBADMSG);
	cr_assert_null(w);
	/* A header that lies about its length; a bad header. */
	cr_assert_eq(wf_write_text(path, "\xff\xff\xff\xff\xff\xff\xff\x7f{}"), 0);
	cr_assert_eq(unimem_weights_open(&w, path, 0), -EBADMSG);
	cr_assert_eq(wf_write_text(path, "\x04\0\0\0\0\0\0\0{\"a\"}"), 0);
	cr_assert_eq(unimem_weights_open(&w, path, 0), -EBADMSG);
	cr_assert_eq(wf_write_text(path, "abc"), 0);
	cr_assert_eq(unimem_weights_open(&w, path, 0), -EBADMSG);
	cr_assert_null(w);
	/* The file gets shorter between open and upload: -EIO, nothing uploaded. */
	cr_assert_gt(wf_write(path, model_a, NA, NULL, 3), 0);
	cr_assert_eq(unimem_weights_open(&w, path, 0), 0);
	cr_assert_eq(truncate(path, 4096), 0);
	cr_assert_eq(unimem_weights_upload(w, UNIMEM_WEIGHTS_CPU, NULL, 0), -EIO);
	cr_assert_null(unimem_weights_ptr(w, 0));
	cr_assert_eq(unimem_weights_device(w), -2);
	cr_assert_eq(unimem_weights_staging(w), 0);
	unimem_weights_close(w);
}

Test(weights, bad_arguments_and_accessors_of_null)
{
	unimem_weights *w = (unimem_weights *)1;
	cr_assert_eq(unimem_weights_open(NULL, "x", 0), -EINVAL);
	cr_assert_eq(unimem_weights_open(&w, NULL, 0), -EINVAL);
	cr_assert_null(w);
	w = (unimem_weights *)1;
	cr_assert_eq(unimem_weights_open(&w, dir, UNIMEM_READ_BUFFERED | UNIMEM_READ_DIRECT), -EINVAL);
	cr_assert_null(w);
	cr_assert_eq(unimem_weights_open(&w, dir, 1u << 9), -EINVAL);
	cr_assert_eq(unimem_weights_open(&w, dir, 0), -ENOENT); /* a directory without a model */
	cr_assert_eq(unimem_weights_open(&w, at_dir("none.safetensors"), 0), -ENOENT);
	cr_assert_eq(unimem_weights_load(NULL, at_dir("none"), UNIMEM_WEIGHTS_CPU, NULL, 0, 0), -EINVAL);
	cr_assert_eq(unimem_weights_upload(NULL, UNIMEM_WEIGHTS_CPU, NULL, 0), -EINVAL);
	unimem_weights_close(NULL);
	cr_assert_eq(unimem_weights_bytes(NULL), 0);
	cr_assert_eq(unimem_weights_count(NULL), 0);
	cr_assert_null(unimem_weights_name(NULL, 0));
	cr_assert_eq(unimem_weights_find(NULL, "a"), -1);
	cr_assert_eq(unimem_weights_dtype(NULL, 0), 0);
	cr_assert_eq(unimem_weights_ndim(NULL, 0), -1);
	cr_assert_null(unimem_weights_shape(NULL, 0));
	cr_assert_eq(unimem_weights_nbytes(NULL, 0), 0);
	cr_assert_eq(unimem_weights_offset(NULL, 0), 0);
	cr_assert_null(unimem_weights_ptr(NULL, 0));
	cr_assert_eq(unimem_weights_device(NULL), -2);
	cr_assert_null(unimem_weights_metadata(NULL, "a"));
	cr_assert_null(unimem_weights_metadata_key(NULL, 0));
	cr_assert_eq(unimem_weights_files(NULL), 0);
	cr_assert_eq(unimem_weights_staging(NULL), 0);
	/* Out of range, and a name not there. */
	const char *path = at_dir("a.safetensors");
	cr_assert_gt(wf_write(path, model_a, NA, NULL, 4), 0);
	cr_assert_eq(unimem_weights_open(&w, path, 0), 0);
	cr_assert_eq(unimem_weights_find(w, "nope"), -1);
	cr_assert_eq(unimem_weights_find(w, NULL), -1);
	cr_assert_null(unimem_weights_name(w, NA));
	cr_assert_eq(unimem_weights_dtype(w, NA), 0);
	cr_assert_eq(unimem_weights_dtype(w, 0), UNIMEM_DTYPE_BF16);
	cr_assert_eq(unimem_weights_ndim(w, NA), -1);
	cr_assert_null(unimem_weights_shape(w, NA));
	cr_assert_eq(unimem_weights_nbytes(w, NA), 0);
	cr_assert_eq(unimem_weights_offset(w, NA), 0);
	cr_assert_null(unimem_weights_ptr(w, NA));
	/* No GPU here (or a device past the last one). */
	if (unimem_gpu_count() == 0)
		cr_assert_eq(unimem_weights_upload(w, 0, NULL, 0), -ENODEV);
	cr_assert_eq(unimem_weights_upload(w, 1 << 20, NULL, 0), -ENODEV);
	unimem_weights_close(w);
}

/* Hostile indexes: every truncation of a good one and 2000 mutations (bytes flipped,
 * structural characters thrown in) give an error the contract names, or a model that
 * agrees with its shards; never a crash, never an fd left open. */
Test(weights, truncated_and_mutated_indexes_never_crash)
{
	write_shards(7);
	size_t n = strlen(good_index);
	char *text = malloc(n + 1);
	cr_assert_not_null(text);
	const char *ix = at_dir("m.index.json");
	int fds = count_fds();
	unsigned seed = 12345;
	for (size_t round = 0; round < n + 2000; round++) {
		memcpy(text, good_index, n + 1);
		if (round < n) {
			text[round] = '\0'; /* a truncation */
		} else {
			int flips = 1 + rand_r(&seed) % 4;
			for (int f = 0; f < flips; f++) {
				static const char pick[] = "{}[]:,\"\\ 0u-.e/";
				size_t at = (size_t)rand_r(&seed) % n;
				text[at] = rand_r(&seed) % 2 ? pick[rand_r(&seed) % (sizeof pick - 1)]
							   : (char)(rand_r(&seed) % 256);
			}
		}
		cr_assert_eq(wf_write_text(ix, text), 0);
		unimem_weights *w = NULL;
		int err = unimem_weights_open(&w, ix, 0);
		if (err) {
			cr_assert_null(w);
			cr_assert(err == -EBADMSG || err == -ENOENT || err == -EINVAL ||
				  err == -ENAMETOOLONG || err == -ENOTDIR || err == -EISDIR,
				  "%d for %s", err, text);
		} else {
			/* Accepted: it names these shards' tensors exactly. */
			cr_assert_eq(unimem_weights_count(w), 5, "%s", text);
			unimem_weights_close(w);
		}
	}
	cr_assert_eq(count_fds(), fds);
	free(text);
}
