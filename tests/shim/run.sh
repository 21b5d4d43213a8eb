#!/bin/sh
# The shim's tests: the differential test (esca-diff check over many
# programs, directly vs under the shim) and the rule tests t-* (directly,
# then under the shim). Ends with "shim: N passed, N failed"; exit status
# 0 iff nothing failed. POSIX sh: runs in the guest's busybox too.
#
# Layouts: the guest's (/esca/shimtests/run.sh next to the t-* binaries,
# /esca/bin/esca-diff, /esca/lib/libesca-preload.so) or the source tree's
# (tests/shim/run.sh; binaries under build/, from `make`).
#
# Env: ESCA_DIFF_SEED  first seed (default: from the clock; printed)
#      ESCA_DIFF_N     programs (default 10000)
#      ESCA_PRELOAD    the shim (default: found from the layout)
#      ESCA_SHIM_DIRECT=0  skip the direct runs of the t-* tests
#      ESCA_TEST_TIMEOUT   seconds per test (default 900)
#
# Time: natively about 30 s for 10000 programs. In a TCG guest with the
# module, about 0.25 s per program (direct and shim runs together), so
# ESCA_DIFF_N=1000 takes about 4 minutes there.
set -u

here=$(cd "$(dirname "$0")" && pwd)
if [ -x "$here/t-write-close" ]; then # guest layout
	tests=$here
	bin=$here/../bin
	lib=$here/../lib
else
	root=$(cd "$here/../.." && pwd)
	tests=$root/build/shimtests
	bin=$root/build/bin
	lib=$root/build/lib
fi
shim=${ESCA_PRELOAD:-$lib/libesca-preload.so}
n=${ESCA_DIFF_N:-10000}
seed=${ESCA_DIFF_SEED:-$(($(date +%s) % 1000000 * 1000))}
limit=${ESCA_TEST_TIMEOUT:-900}
passed=0
failed=0
failed_names=

for f in "$bin/esca-diff" "$shim"; do
	if [ ! -e "$f" ]; then
		echo "shim: $f is missing (run make)" >&2
		echo "shim: 0 passed, 1 failed"
		exit 1
	fi
done

# run NAME CMD...: one test; its output is shown when it fails. A t-*
# test run under the shim must say the shim was loaded.
run() {
	name=$1
	shift
	out=/tmp/shimtest.$$.out
	start=$(date +%s)
	timeout "$limit" "$@" > "$out" 2>&1
	rc=$?
	secs=$(($(date +%s) - start))
	case "$name" in
	*"(shim)")
		if [ $rc -eq 0 ] && ! grep -q -e '^# .*: shim loaded' -e '^esca-stats ' "$out"; then
			echo "  (the shim was not loaded)" >> "$out"
			rc=1
		fi ;;
	esac
	if [ $rc -eq 0 ]; then
		passed=$((passed + 1))
		echo "PASS $name (${secs} s)"
		grep -E '^(PASS|esca-diff: [0-9]+ programs.*\(seeds)' "$out" | sed 's/^/  | /'
		# what the shim did (ESCA_STATS): the first processes' lines
		grep '^esca-stats' "$out" | head -n 2 | sed 's/^/  | /'
	else
		failed=$((failed + 1))
		failed_names="$failed_names $name"
		[ $rc -eq 124 ] && echo "  (timed out after $limit s)"
		echo "FAIL $name (exit $rc, ${secs} s)"
		# the failed checks first, then the output's start
		grep -E '^FAIL' "$out" | head -n 20 | sed 's/^/  | /'
		grep -v -e 'module not loaded' -e '^esca-stats' "$out" | head -n 60 | sed 's/^/  | /'
	fi
	rm -f "$out"
}

echo "shim: esca-diff seeds $seed..$((seed + n - 1)) (ESCA_DIFF_SEED=$seed to repeat)"
run "esca-diff" env ESCA_PRELOAD="$shim" "$bin/esca-diff" check "$seed" "$n"

for t in "$tests"/t-*; do
	[ -x "$t" ] || continue
	tname=$(basename "$t")
	if [ "${ESCA_SHIM_DIRECT:-1}" != 0 ]; then
		run "$tname (direct)" env -u LD_PRELOAD "$t"
	fi
	run "$tname (shim)" env LD_PRELOAD="$shim" ESCA_STATS=1 "$t"
done

[ -n "$failed_names" ] && echo "shim: failed:$failed_names"
echo "shim: $passed passed, $failed failed"
[ $failed -eq 0 ]
