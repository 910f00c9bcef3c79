/* SPDX-License-Identifier: MIT */
/* unimem_strerror and unimem_version. */
#include <unimem/unimem.h>

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

Test(errors, every_code_has_a_message_either_sign)
{
	int codes[] = { 0, EPERM, EINVAL, ENOMEM, ENOSYS, ENOENT, EACCES, ENODEV, EALREADY, ENOTSUP,
			EMFILE, EIO, 4095, 123456 };
	for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
		char neg[512];
		const char *m = unimem_strerror(-codes[i]);
		cr_assert_not_null(m);
		cr_assert_gt(strlen(m), 3);
		snprintf(neg, sizeof neg, "%s", m);
		cr_assert_str_eq(unimem_strerror(codes[i]), neg, "code %d", codes[i]);
	}
}

Test(errors, eperm_names_the_limit_and_the_flag)
{
	const char *m = unimem_strerror(-EPERM);
	cr_assert(strstr(m, "RLIMIT_MEMLOCK"), "%s", m);
	cr_assert(strstr(m, "UNIMEM_BLOCK_UNPINNED"), "%s", m);
}

Test(errors, specific_messages)
{
	cr_assert(strstr(unimem_strerror(-EALREADY), "twice"));
	cr_assert(strstr(unimem_strerror(-ENODEV), "GPU"));
	cr_assert(strstr(unimem_strerror(-ENOENT), "id"));
	cr_assert(strstr(unimem_strerror(-EACCES), "another user"));
}

Test(errors, version)
{
	cr_assert_str_eq(unimem_version(), UNIMEM_TEST_VERSION);
}
