#!/bin/sh
# libesca's two wait settings, measured instead of guessed: esca-micro's
# deferred mode (ring kept full, then drained) with libesca built for each
# pair of
#   ESCA_DRAIN_SPIN_TAIL  entries a drain spins for (it sleeps through the
#                         rest), default 8
#   ESCA_REFILL_DIV       a full ring sleeps until at most 1/DIV of it is
#                         still queued, default 2
# all in one guest, one after the other, so the variants share the
# machine's state. Prints one table per call: the application core's cost
# per call, wall time per call, the cost over the direct call's (each
# variant runs its own direct rows) and traps per call, medians of RUNS
# runs.
#
#   bench/micro/sweep.sh [--kernel 6.1|6.12] [--runs R] [--tails "0 8 32"]
#                        [--divs "2 4"] [--call LIST]
#
# Run from the top of the tree after `make deps` (and `make guest K=...`,
# which this runs). Under TCG the figures are emulated: compare the rows
# of one run only.
set -eu
cd "$(dirname "$0")/../.."
K=6.1
RUNS=5
TAILS="0 8 32 128"
DIVS="2 4"
CALLS=pwrite64,write
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) K=$2; shift 2 ;;
	--runs) RUNS=$2; shift 2 ;;
	--tails) TAILS=$2; shift 2 ;;
	--divs) DIVS=$2; shift 2 ;;
	--call) CALLS=$2; shift 2 ;;
	-h | --help) sed -n '2,20p' "$0"; exit 0 ;;
	*) echo "sweep.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
done
case "$RUNS" in '' | *[!0-9]*) echo "sweep.sh: --runs wants a number" >&2; exit 2 ;; esac

OUT=build/sweep
CFLAGS="-O2 -g -std=c11 -Wall -Wextra -Werror -Iinclude -Ilib -pthread"
mkdir -p "$OUT"
make -s guest K="$K"
bins=""
for t in $TAILS; do
	for d in $DIVS; do
		b=$OUT/esca-micro-t$t-d$d
		cc $CFLAGS -DESCA_DRAIN_SPIN_TAIL="$t" -DESCA_REFILL_DIV="$d" \
			-fPIC -fvisibility=hidden -c -o "$OUT/esca-t$t-d$d.o" lib/esca.c
		cc $CFLAGS -Itests/vm -o "$b" bench/micro/esca-micro.c \
			"$OUT/esca-t$t-d$d.o" -l:liburing.a -pthread
		bins="$bins $b"
	done
done

cmd=""
for b in $bins; do
	n=${b##*/}
	cmd="$cmd echo \"== ${n#esca-micro-}\"; /extra/$n --call $CALLS --mode deferred --runs $RUNS --csv || exit 1;"
done
# shellcheck disable=SC2086
ESCA_VM_APPEND="clocksource=tsc tsc=reliable" tests/vm/run --kernel "$K" \
	--add $bins -- "$cmd" | tr -d '\r' >"$OUT/sweep-$K.log"

# "== tT-dD" then CSV rows (call,mode,app_ns,wall_ns,...); keep deferred
awk -F, -v k="$K" '
/^== / { v = $0; sub(/^== /, "", v); next }
$2 == "deferred" && v != "" {
	key = $1; if (!(key in seen)) { seen[key] = 1; order[++n] = key }
	row[key] = row[key] sprintf("%-10s %10s %10s %10s %8s\n", v, $3, $4, $6, $5)
}
/^call,/ { hdr = $0 }
END {
	if (!n) { print "sweep.sh: no result rows (see the log)"; exit 1 }
	print "deferred mode, kernel " k ", medians per call (CSV header: " hdr ")"
	for (i = 1; i <= n; i++) {
		printf "\n%s\n%-10s %10s %10s %10s %8s\n", order[i], "tail-div", "app ns", "wall ns", "app/direct", "traps"
		printf "%s", row[order[i]]
	}
}' "$OUT/sweep-$K.log"
