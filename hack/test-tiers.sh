#!/usr/bin/env bash
# Runs every Go test tier for `make check`, with the end-to-end tier in a
# go test of its own started first, beside all the other packages.
#
# Why: the e2e tier is CI's longest package (~9 min) and spends most of it
# waiting for pods, and one `go test ./...` starts it only once the
# packages before it in the import-path order have taken their turns on
# -p's slots. Started first, it overlaps the rest (the instance tier is
# the next longest), which brings a warm CI run under its 15 minutes. The
# e2e tests that need a quiet node measure only what load cannot change
# (test/e2e/doc.go). Its output is printed after the other packages', so
# the two do not interleave.
set -uo pipefail
GO=${GO:-go}
e2e=./test/e2e
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# -parallel 4: the parallel e2e tests wait on pods, not on a CPU (the
# default is GOMAXPROCS, two here).
"$GO" test -race -count=1 -timeout 30m -parallel 4 "$e2e" >"$log" 2>&1 &
e2e_pid=$!

# At the same CPU priority: the instance tier's failover tests run on
# Lease timings (a run at nice 10 saw a synchronous election refused when
# a starved standby did not answer in time).
mapfile -t others < <("$GO" list ./... | grep -v '/test/e2e$')
"$GO" test -race -count=1 -timeout 30m "${others[@]}"
rest=$?

wait "$e2e_pid"
e2e_status=$?
cat "$log"
if [ "$rest" -ne 0 ] || [ "$e2e_status" -ne 0 ]; then
	exit 1
fi
