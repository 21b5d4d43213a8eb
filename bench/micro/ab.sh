#!/bin/sh
# Two builds of esca.ko side by side in one guest: A from a git revision
# (default HEAD), B from the working tree. The guest loads A, runs
# esca-micro, unloads it, loads B, runs it again, and so on for ROUNDS
# rounds, so both builds share the guest's and the host's state. Prints,
# per call and mode, the cost on the application core over the direct
# call's (each esca-micro run measures its own direct rows) of every round
# and their median, for A and for B. esca-micro and libesca are the
# working tree's in both.
#
#   bench/micro/ab.sh [--kernel 6.1|6.12] [--rounds N] [--runs R]
#                     [--call LIST] [--mode LIST] [REV]
#
# Run from the top of the tree after `make deps` (this runs `make guest`).
# Under TCG the figures are emulated: compare A with B of one run only.
set -eu
cd "$(dirname "$0")/../.."
K=6.1
ROUNDS=3
RUNS=5
CALLS=pwrite64,write
MODES=sync,deferred
REV=HEAD
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) K=$2; shift 2 ;;
	--rounds) ROUNDS=$2; shift 2 ;;
	--runs) RUNS=$2; shift 2 ;;
	--call) CALLS=$2; shift 2 ;;
	--mode) MODES=$2; shift 2 ;;
	-h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
	-*) echo "ab.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
	*) REV=$1; shift ;;
	esac
done
for n in "$ROUNDS" "$RUNS"; do
	case "$n" in '' | *[!0-9]*) echo "ab.sh: --rounds and --runs want numbers" >&2; exit 2 ;; esac
done
git rev-parse -q --verify "$REV^{commit}" >/dev/null ||
	{ echo "ab.sh: $REV: not a git revision" >&2; exit 2; }

OUT=build/ab
rm -rf "$OUT" && mkdir -p "$OUT/A/src"
make -s guest K="$K"
KDIR=$(scripts/kernel.sh kdir "$K")
# A: the revision's kmod/ and ABI header, laid out as the Makefile does
git archive "$REV" kmod include/esca | tar -x -C "$OUT/A/src"
make -s -C "$KDIR" M="$PWD/$OUT/A/src/kmod" modules 2>&1 | grep -v 'Skipping BTF generation' || true
cp "$OUT/A/src/kmod/esca.ko" "$OUT/esca-A.ko"
cp "build/k$K/src/kmod/esca.ko" "$OUT/esca-B.ko"
delta=$(git diff --stat "$REV" -- kmod include/esca | tail -n 1)
echo "ab.sh: A = esca.ko of $(git rev-parse --short "$REV"), B = the working tree's (${delta:-the same source})"

cmd="rmmod esca 2>/dev/null;"
r=1
while [ "$r" -le "$ROUNDS" ]; do
	for v in A B; do
		cmd="$cmd insmod /extra/esca-$v.ko cores=1 dev_mode=0666 || exit 1;"
		cmd="$cmd echo \"== $v $r\"; bin/esca-micro --call $CALLS --mode $MODES --runs $RUNS --csv || exit 1;"
		cmd="$cmd for i in \$(seq 50); do rmmod esca 2>/dev/null && break; sleep 0.1; done;"
	done
	r=$((r + 1))
done
ESCA_VM_APPEND="clocksource=tsc tsc=reliable" tests/vm/run --kernel "$K" --no-load \
	--add "$OUT/esca-A.ko" "$OUT/esca-B.ko" -- "$cmd" | tr -d '\r' >"$OUT/ab-$K.log" ||
	{ echo "ab.sh: the guest run failed; see $OUT/ab-$K.log" >&2; exit 1; }

# "== V R" then CSV rows call,mode,app_ns,wall_ns,traps,app_ratio,...
awk -F, -v k="$K" '
/^== / { split($0, f, " "); v = f[2]; next }
NF >= 6 && $1 != "call" && $2 != "direct" && v != "" {
	key = $1 " " $2
	if (!(key in seen)) { seen[key] = 1; order[++n] = key }
	r[key, v] = r[key, v] " " $6
}
function median(s,   a, m, i, j, t) {
	m = split(s, a, " ")
	for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++)
		if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
}
END {
	if (!n) { print "ab.sh: no result rows (see the log)"; exit 1 }
	print "kernel " k ": cost on the application core over the direct call, per round; median"
	printf "%-18s %-28s %-8s %-28s %-8s\n", "call mode", "A rounds", "A med", "B rounds", "B med"
	for (i = 1; i <= n; i++) {
		key = order[i]
		printf "%-18s %-28s %-8.2f %-28s %-8.2f\n", key, r[key, "A"], median(r[key, "A"]), r[key, "B"], median(r[key, "B"])
	}
}' "$OUT/ab-$K.log"
