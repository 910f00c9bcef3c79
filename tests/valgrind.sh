#!/bin/sh
# SPDX-License-Identifier: MIT
# The exe_wrapper of the 'valgrind' test setup (meson test --setup valgrind).
# Runs the test, and every process it starts, under valgrind, each process logging to a
# file of its own, and fails when any log reports an error. Criterion runs each test in a
# child process and ignores how a child exits once the test has reported (a leak found at
# the child's exit, or valgrind's --error-exitcode, would go unnoticed): the logs do not.
# Valgrind's logs with errors go to stderr; stdout (the TAP stream) is the test's alone.
# Programs that start themselves again through execve("/proc/self/exe"), which under
# valgrind names valgrind's own tool binary (valgrind 3.19 cannot start it): they run
# without valgrind, and say so. `unimem bench` (run by the cli test) does the same: it is
# left out of --trace-children below.
case "${1##*/}" in
test_share | share_floats)
	echo "valgrind.sh: ${1##*/} re-executes /proc/self/exe: run without valgrind" >&2
	exec "$@"
	;;
esac
logs=$(mktemp -d "${TMPDIR:-/tmp}/unimem-valgrind.XXXXXX") || exit 1
chmod 1777 "$logs" # tests that drop to nobody log here too
valgrind --quiet --trace-children=yes --error-exitcode=66 --vgdb=no \
	--leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
	--trace-children-skip='*/cc,*/gcc*,*/cc1*,*/c++,*/g++*,*/cc1plus,*/as,*/ld*,*/collect2,*/clang*,*/unimem' \
	--log-file="$logs/%p.log" "$@"
rc=$?
# Quiet, valgrind writes ==pid== lines only for errors (and for warnings, which are not);
# its own notes (an unhandled syscall: mlock2 in valgrind 3.19) are --pid-- lines.
bad=$(grep -lE '^==[0-9]+== +[^ W]' "$logs"/*.log 2>/dev/null)
for f in $bad; do
	echo "=== valgrind: $f" >&2
	cat "$f" >&2
done
rm -rf "$logs"
if [ -n "$bad" ] && [ "$rc" -eq 0 ]; then
	rc=66
fi
exit "$rc"
