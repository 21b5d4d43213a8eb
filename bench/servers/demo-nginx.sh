#!/bin/sh
# make demo, second part (runs in the guest, busybox sh): Debian's nginx,
# vanilla and under ESCA, driven by wrk, side by side in one boot.
#
# Layout: nginx (master + 2 workers) pinned to CPU 0 with numactl, wrk to
# CPU 1, the consumer esca/2 on CPU 2 (insmod cores=2). Traps are every
# raw_syscalls:sys_enter on CPU 0 while wrk runs (nothing else is pinned
# there), over wrk's completed requests. Calls offloaded: the module's
# consumer calls over the same requests.
#
# Env: DEMO_SECONDS (wrk duration, default 5), DEMO_REPS (runs per mode,
# alternating, default 3), DEMO_CONNS (default 16), DEMO_OBJECT (default
# 4k.bin). Prints one Markdown table of medians, and each run's line.
set -u
. /esca/tests/servers/lib.sh

SECS=${DEMO_SECONDS:-5}
REPS=${DEMO_REPS:-3}
CONNS=${DEMO_CONNS:-16}
OBJ=${DEMO_OBJECT:-4k.bin}
SRV_CPU=0 LOAD_CPU=1
OUT=/tmp/demo
mkdir -p $OUT
: >$OUT/runs

die() { echo "demo: $*" >&2; exit 1; }

consumer_calls() {  # sum of every consumer's calls= counter
    awk '/^consumer/ { for (i = 1; i <= NF; i++) if ($i ~ /^calls=/) { sub(/calls=/, "", $i); s += $i } }
         END { print s + 0 }' /proc/esca/stats
}

# wrk's latency line value ("1.23ms", "870.00us", "1.01s") in ms
to_ms() {
    awk -v v="$1" 'BEGIN { u = v; sub(/[0-9.]+/, "", u); n = v + 0;
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000;
        printf "%.3f", n }'
}

[ -r /proc/esca/stats ] || die "esca.ko is not loaded"
grep -q "^consumer cpu=2 " /proc/esca/stats || die "want the consumer on CPU 2 (insmod cores=2)"
[ "$(grep -c ^processor /proc/cpuinfo)" -ge 3 ] || die "want 3 CPUs in the guest (ESCA_VM_SMP=3)"
www_make /tmp/www || die "cannot make the docroot"

one_run() {  # MODE REP
    mode=$1
    pre=
    [ "$mode" = esca ] && pre=--preload
    SRV_WRAP="numactl --physcpubind=$SRV_CPU" SRV_ENV="ESCA_STATS=1" \
        srv_start nginx $pre || die "nginx ($mode) did not start"
    # warm up the connections and the page cache
    numactl --physcpubind=$LOAD_CPU wrk -t1 -c"$CONNS" -d1s \
        "http://127.0.0.1:8080/$OBJ" >/dev/null 2>&1
    c0=$(consumer_calls)
    esca-traps -c $SRV_CPU -o $OUT/traps -- \
        numactl --physcpubind=$LOAD_CPU wrk -t1 -c"$CONNS" -d"${SECS}s" \
        --latency "http://127.0.0.1:8080/$OBJ" >$OUT/wrk 2>&1 ||
        { cat $OUT/wrk; die "wrk failed ($mode)"; }
    c1=$(consumer_calls)
    srv_stop nginx || die "nginx ($mode) did not stop cleanly"
    reqs=$(awk '/requests in/ { print $1 }' $OUT/wrk)
    rps=$(awk '/^Requests\/sec/ { print $2 }' $OUT/wrk)
    p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' $OUT/wrk)")
    p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' $OUT/wrk)")
    errs=$(awk '/Non-2xx|Socket errors/ { print }' $OUT/wrk)
    traps=$(sed -n 's/.* total=\([0-9]*\).*/\1/p' $OUT/traps)
    [ -n "$reqs" ] && [ "$reqs" -gt 0 ] || { cat $OUT/wrk; die "wrk completed no request ($mode)"; }
    [ -z "$errs" ] || echo "demo: warning: $mode run $2: $errs" >&2
    awk -v m="$mode" -v r="$2" -v q="$reqs" -v rps="$rps" -v p50="$p50" \
        -v p99="$p99" -v t="$traps" -v c=$((c1 - c0)) 'BEGIN {
        printf "%s %s %d %.1f %.3f %.3f %.2f %.2f\n", m, r, q, rps, p50, p99, t / q, c / q }' >>$OUT/runs
    tail -n 1 $OUT/runs | awk '{ printf "demo: run %s %-7s %8d requests %9.1f req/s p50 %.3f ms p99 %.3f ms %.2f traps/req %.2f offloaded/req\n", $2, $1, $3, $4, $5, $6, $7, $8 }'
    grep '^esca-stats' "$SRV_RUN/nginx.log" | sed 's/^/demo:   /'
}

echo "demo: nginx (2 workers) on CPU $SRV_CPU, wrk -t1 -c$CONNS ${SECS}s on CPU $LOAD_CPU, consumer on CPU 2; GET /$OBJ, keep-alive; $REPS runs per mode, alternating"
r=1
while [ $r -le "$REPS" ]; do
    one_run vanilla $r
    one_run esca $r
    r=$((r + 1))
done

# medians per mode, then the table
awk -v accel="$(sed -n 's/.*esca_accel=\([a-z]*\).*/\1/p' /proc/cmdline)" \
    -v kernel="$(uname -r)" -v reps="$REPS" '
function median(arr, n,   i, j, t) {
    for (i = 2; i <= n; i++) for (j = i; j > 1 && arr[j - 1] > arr[j]; j--) { t = arr[j]; arr[j] = arr[j - 1]; arr[j - 1] = t }
    return n % 2 ? arr[(n + 1) / 2] : (arr[n / 2] + arr[n / 2 + 1]) / 2
}
{ k = $1; n[k]++; rps[k, n[k]] = $4; p50[k, n[k]] = $5; p99[k, n[k]] = $6; tr[k, n[k]] = $7; off[k, n[k]] = $8 }
END {
    split("vanilla esca", modes, " ")
    for (m = 1; m <= 2; m++) {
        k = modes[m]
        for (i = 1; i <= n[k]; i++) { a[i] = rps[k, i] } R[k] = median(a, n[k])
        for (i = 1; i <= n[k]; i++) { a[i] = p50[k, i] } P50[k] = median(a, n[k])
        for (i = 1; i <= n[k]; i++) { a[i] = p99[k, i] } P99[k] = median(a, n[k])
        for (i = 1; i <= n[k]; i++) { a[i] = tr[k, i] } T[k] = median(a, n[k])
        for (i = 1; i <= n[k]; i++) { a[i] = off[k, i] } O[k] = median(a, n[k])
    }
    printf "\nnginx, vanilla vs ESCA (medians of %d runs; %s guest, kernel %s%s)\n\n", reps, toupper(accel), kernel, accel == "tcg" ? ": emulated, ratios indicative only" : ""
    printf "| | requests/s | p50 ms | p99 ms | traps/request | offloaded/request |\n"
    printf "|---|---|---|---|---|---|\n"
    printf "| vanilla | %.1f | %.3f | %.3f | %.2f | %.2f |\n", R["vanilla"], P50["vanilla"], P99["vanilla"], T["vanilla"], O["vanilla"]
    printf "| ESCA | %.1f | %.3f | %.3f | %.2f | %.2f |\n", R["esca"], P50["esca"], P99["esca"], T["esca"], O["esca"]
    printf "| ESCA/vanilla | %.2f | %.2f | %.2f | %.2f | |\n", R["esca"] / R["vanilla"], P50["esca"] / P50["vanilla"], P99["esca"] / P99["vanilla"], T["vanilla"] ? T["esca"] / T["vanilla"] : 0
}' $OUT/runs
