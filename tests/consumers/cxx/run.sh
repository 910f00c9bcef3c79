#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A C++ consumer of the installed unimem: the headers meson install put in a DESTDIR are
# exactly the public ones (handwritten and generated), one translation unit includes
# them all and calls the inline hot paths, compiled as C++11 and C++17 with warnings as
# errors by every C++ compiler here, linked with pkg-config, and run. TAP on stdout.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/consumers/lib.sh
. "$here/../lib.sh"
need meson pkg-config

candidates=(${CXX:+"$CXX"} g++ clang++)
# A sanitized libunimem brings its compiler's sanitizer runtime: only that compiler's C++.
if [ ${#san_flags[@]} -gt 0 ]; then
	case $UNIMEM_CC_ID in
	gcc) candidates=(g++) ;;
	clang) candidates=(clang++) ;;
	esac
fi
compilers=()
for c in "${candidates[@]}"; do
	if [ -n "$c" ] && command -v "$c" >/dev/null 2>&1; then
		case " ${compilers[*]-} " in *" $c "*) ;; *) compilers+=("$c") ;; esac
	fi
done
[ ${#compilers[@]} -gt 0 ] || skip_all "no C++ compiler (g++, clang++)"
stds=(c++11 c++17)

plan $((2 + ${#compilers[@]} * ${#stds[@]} * 2))
dest=$work/dest
must "meson install --destdir" install_unimem "$dest"

# What a C++ user gets: every header under include/unimem/ of the source and of the
# build (generated), nothing more, nothing less.
inc=$(find "$dest" -type d -path '*/include/unimem' | head -n1)
expected=$( (cd "$UNIMEM_SOURCE_ROOT/include/unimem" && ls -- *.h
	cd "$UNIMEM_BUILD_ROOT/include/unimem" 2>/dev/null && ls -- *.h) | sort -u)
installed=$(cd "$inc" && ls -- *.h | sort)
must "the installed headers are the public ones: $(echo $installed)" \
	bash -c '[ "$1" = "$2" ] || { diff <(echo "$1") <(echo "$2"); false; }' _ "$expected" "$installed"

# The umbrella last, so that each header shows it stands on its own in C++.
{
	for h in $installed; do
		[ "$h" = unimem.h ] || echo "#include <unimem/$h>"
	done
	echo "#include <unimem/unimem.h>"
} >"$work/all.hpp"

flags=$(PKG_CONFIG_LIBDIR=$pcdir PKG_CONFIG_SYSROOT_DIR=$dest pkg-config --cflags --libs unimem)
for cxx in "${compilers[@]}"; do
	for std in "${stds[@]}"; do
		exe=$work/app-$(basename "$cxx")-$std # a compiler may be named by its path
		# shellcheck disable=SC2086 # $flags is a list of words
		check "$cxx -std=$std -Wall -Wextra -Werror -pedantic: all public headers, inline hot paths" \
			"$cxx" -std="$std" -Wall -Wextra -Werror -pedantic -I"$work" "$here/app.cpp" \
			$flags "${san_flags[@]}" -o "$exe"
		if [ -x "$exe" ]; then
			check "the $cxx $std program runs" env LD_LIBRARY_PATH="$libdir" "$exe"
		else
			not_ok "the $cxx $std program runs (not built)"
		fi
	done
done
finish
