#!/bin/bash
# SPDX-License-Identifier: MIT
# A/B of Grid builds on one machine: release builds of each tree, then fresh processes of
# `unimem bench --only grid --json -q` taking turns (tree 1, tree 2, ..., then again), so
# that a noisy or drifting host spreads over every tree alike. Summary by grid_ab.py.
#   bash bench/grid_ab.sh [-n RUNS] [-t SECONDS] TAG=TREE ...
# TREE is a source directory (. for the working tree) or a tarball of one (make it here
# with `git archive REV > x.tar`: the device's copy of the tree has no git history).
# Rivals carried in .bench-carry/ are used when present (bench/grid_device.sh). JSON runs
# in $OUT/ab/TAG-RUN.json (OUT defaults to /tmp/grid-ab); stops after RUNS rounds
# (default 10) or once SECONDS (default 300) have passed.
set -u
runs=10 budget=300
while getopts n:t: o; do
	case $o in
	n) runs=$OPTARG ;;
	t) budget=$OPTARG ;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { echo "usage: $0 [-n RUNS] [-t SECONDS] TAG=TREE ..." >&2; exit 2; }
OUTD=${OUT:-/tmp/grid-ab}
WORK=$(mktemp -d /tmp/grid-ab.XXXXXX)
mkdir -p "$OUTD/ab"
source "$(dirname "$0")/carry_env.sh"
tags=()
for spec in "$@"; do
	tag=${spec%%=*} tree=${spec#*=}
	case $tag in '' | *[!A-Za-z0-9_]*) echo "bad tag '$tag' (letters, digits, _)" >&2; exit 2 ;; esac
	src=$WORK/src-$tag
	mkdir -p "$src"
	if [ -f "$tree" ]; then
		tar xf "$tree" -C "$src" || exit 1
	elif [ -d "$tree" ]; then
		(cd "$tree" && tar cf - --exclude=./build\* --exclude=./.git --exclude=./.bench-carry .) |
			tar xf - -C "$src" || exit 1
	else
		echo "$tree: no such directory or tarball" >&2
		exit 2
	fi
	echo "== $(date -u +%T) build $tag ($tree)"
	(cd "$src" && meson setup "$WORK/b-$tag" -Dbuildtype=release && ninja -C "$WORK/b-$tag" tools/unimem) \
		> "$OUTD/build-$tag.log" 2>&1 || { tail -20 "$OUTD/build-$tag.log"; exit 1; }
	tags+=("$tag")
done
echo "== $(date -u +%T) $(nproc) CPUs, $(uptime | sed 's/.*load/load/')"
t0=$(date +%s)
for ((r = 1; r <= runs; r++)); do
	for tag in "${tags[@]}"; do
		"$WORK/b-$tag/tools/unimem" bench --only grid --json -q > "$OUTD/ab/$tag-$r.json" \
			2>> "$OUTD/bench.err" || echo "$tag run $r: rc $?" >&2
	done
	[ $(($(date +%s) - t0)) -ge "$budget" ] && break
done
echo "== $(date -u +%T) $((r > runs ? runs : r)) rounds, $(uptime | sed 's/.*load/load/')"
python3 "$(dirname "$0")/grid_ab.py" "$OUTD/ab" "${tags[@]}"
rm -rf "$WORK"
