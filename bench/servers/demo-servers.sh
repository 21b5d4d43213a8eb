#!/bin/sh
# make demo, second part (runs in the guest, busybox sh): Debian's nginx,
# lighttpd and redis-server, each vanilla and under ESCA, driven by their
# load tools, side by side in one boot.
#
# Layout: the server (all its processes and threads) pinned to CPU 0 with
# numactl, the load tool to CPU 1, the consumer esca/2 on CPU 2 (insmod
# cores=2). Traps are every raw_syscalls:sys_enter on CPU 0 while the load
# runs (nothing else is pinned there), over the requests the load tool
# completed. Calls offloaded: the module's consumer calls over the same
# requests.
#
# Load: nginx and lighttpd, wrk -t1 -c$DEMO_CONNS for DEMO_SECONDS, GET of
# DEMO_OBJECT, keep-alive; redis, redis-benchmark -c$DEMO_CONNS GET of a
# 4 KiB value (set before), DEMO_REDIS_REQUESTS requests.
#
# Env: DEMO_SERVERS (default "nginx lighttpd redis"), DEMO_SECONDS
# (default 5), DEMO_REPS (runs per mode, alternating, default 3),
# DEMO_CONNS (default 16), DEMO_OBJECT (default 4k.bin),
# DEMO_REDIS_REQUESTS (default 4000), DEMO_ESCA_ENV (extra environment for
# the server under ESCA, such as ESCA_SPIN_US=200000). Prints each run's
# line, the shim's counters of each server process, and one Markdown table
# of medians with ESCA/vanilla ratios.
set -u
. /esca/tests/servers/lib.sh

SERVERS=${DEMO_SERVERS:-nginx lighttpd redis}
SECS=${DEMO_SECONDS:-5}
REPS=${DEMO_REPS:-3}
CONNS=${DEMO_CONNS:-16}
OBJ=${DEMO_OBJECT:-4k.bin}
RREQS=${DEMO_REDIS_REQUESTS:-4000}
SRV_CPU=0 LOAD_CPU=1
OUT=/tmp/demo
mkdir -p $OUT
: >$OUT/runs

die() { echo "demo: $*" >&2; exit 1; }

for s in $SERVERS; do
    case "$s" in
        nginx | lighttpd | redis) ;;
        *) die "DEMO_SERVERS: unknown server '$s' (nginx, lighttpd, redis)" ;;
    esac
done
case "$REPS$SECS$CONNS$RREQS" in *[!0-9]*) die "DEMO_REPS, DEMO_SECONDS, DEMO_CONNS and DEMO_REDIS_REQUESTS are numbers" ;; esac

[ -r /proc/esca/stats ] || die "esca.ko is not loaded"
grep -q "^consumer cpu=2 " /proc/esca/stats || die "want the consumer on CPU 2 (insmod cores=2)"
[ "$(grep -c ^processor /proc/cpuinfo)" -ge 3 ] || die "want 3 CPUs in the guest (ESCA_VM_SMP=3)"
www_make /tmp/www || die "cannot make the docroot"

# load SERVER: drive it on LOAD_CPU under esca-traps; leaves
# "requests rps p50_ms p99_ms" in $OUT/load, or fails
load() {
    port=$(srv_port "$1")
    case "$1" in
        redis)
            esca-traps -c $SRV_CPU -o $OUT/traps -- \
                numactl --physcpubind=$LOAD_CPU redis-benchmark -p "$port" \
                -c "$CONNS" -n "$RREQS" -d 4096 -t get --csv >$OUT/tool 2>&1 || return 1
            load_redis_summary $OUT/tool "$RREQS" >$OUT/load ;;
        *)
            esca-traps -c $SRV_CPU -o $OUT/traps -- \
                numactl --physcpubind=$LOAD_CPU wrk -t1 -c"$CONNS" -d"${SECS}s" \
                --latency "http://127.0.0.1:$port/$OBJ" >$OUT/tool 2>&1 || return 1
            errs=$(awk '/Non-2xx|Socket errors/ { print }' $OUT/tool)
            [ -z "$errs" ] || echo "demo: warning: $1: $errs" >&2
            load_wrk_summary $OUT/tool >$OUT/load ;;
    esac
}

# warm up SERVER: connections, page cache; redis gets the value GET reads
warm() {
    port=$(srv_port "$1")
    case "$1" in
        redis)
            numactl --physcpubind=$LOAD_CPU redis-benchmark -p "$port" -c "$CONNS" \
                -n 500 -d 4096 -t set -q >/dev/null 2>&1 ;;
        *)
            numactl --physcpubind=$LOAD_CPU wrk -t1 -c"$CONNS" -d1s \
                "http://127.0.0.1:$port/$OBJ" >/dev/null 2>&1 ;;
    esac
}

one_run() {  # SERVER MODE REP
    srv=$1 mode=$2
    pre=
    [ "$mode" = esca ] && pre=--preload
    SRV_WRAP="numactl --physcpubind=$SRV_CPU" SRV_ENV="ESCA_STATS=1 ${DEMO_ESCA_ENV:-}" \
        srv_start "$srv" $pre || die "$srv ($mode) did not start"
    warm "$srv"
    c0=$(esca_consumer_calls)
    load "$srv" || { cat $OUT/tool; die "$srv: the load tool failed ($mode)"; }
    c1=$(esca_consumer_calls)
    srv_stop "$srv" || die "$srv ($mode) did not stop cleanly"
    traps=$(sed -n 's/.* total=\([0-9]*\).*/\1/p' $OUT/traps)
    read -r reqs rps p50 p99 <$OUT/load
    [ -n "$reqs" ] && [ "$reqs" -gt 0 ] && [ -n "$traps" ] ||
        { cat $OUT/tool; die "$srv: no requests completed or no trap count ($mode)"; }
    awk -v s="$srv" -v m="$mode" -v r="$3" -v q="$reqs" -v rps="$rps" -v p50="$p50" \
        -v p99="$p99" -v t="$traps" -v c=$((c1 - c0)) 'BEGIN {
        printf "%s %s %s %d %.1f %.3f %.3f %.2f %.2f\n", s, m, r, q, rps, p50, p99, t / q, c / q }' >>$OUT/runs
    tail -n 1 $OUT/runs | awk '{ printf "demo: %-8s run %s %-7s %7d requests %9.1f req/s p50 %.3f ms p99 %.3f ms %.2f traps/req %.2f offloaded/req\n", $1, $3, $2, $4, $5, $6, $7, $8, $9 }'
    srv_stats "$srv" | grep '^esca-stats ' | sed 's/^/demo:   /'
}

accel=$(sed -n 's/.*esca_accel=\([a-z]*\).*/\1/p' /proc/cmdline)
echo "demo: servers pinned to CPU $SRV_CPU, load tool to CPU $LOAD_CPU, consumer on CPU 2 (idle_us=$(cat /sys/module/esca/parameters/idle_us)); $REPS runs per mode, alternating; ESCA env: ${DEMO_ESCA_ENV:-defaults}"
echo "demo: nginx (2 workers) and lighttpd: wrk -t1 -c$CONNS ${SECS}s GET /$OBJ keep-alive; redis (io-threads 2): redis-benchmark -c$CONNS -n $RREQS GET 4 KiB"
clock=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null)
echo "demo: guest of $(grep -c ^processor /proc/cpuinfo) vCPUs under $(echo "$accel" | tr a-z A-Z), kernel $(uname -r), clocksource ${clock:-unknown}"
[ "$clock" = tsc ] || echo "demo: note: clocksource ${clock:-unknown}: the vDSO cannot read it, so every clock read traps (boot with clocksource=tsc tsc=reliable)"
for srv in $SERVERS; do
    r=1
    while [ $r -le "$REPS" ]; do
        one_run "$srv" vanilla $r
        one_run "$srv" esca $r
        r=$((r + 1))
    done
done

# medians per server and mode, then the table
awk -v accel="$accel" -v kernel="$(uname -r)" -v reps="$REPS" -v servers="$SERVERS" '
function median(arr, n,   i, j, t) {
    for (i = 2; i <= n; i++) for (j = i; j > 1 && arr[j - 1] > arr[j]; j--) { t = arr[j]; arr[j] = arr[j - 1]; arr[j - 1] = t }
    return n % 2 ? arr[(n + 1) / 2] : (arr[n / 2] + arr[n / 2 + 1]) / 2
}
function med(col, k,   i, a) { for (i = 1; i <= n[k]; i++) a[i] = v[k, i, col]; return median(a, n[k]) }
{ k = $1 " " $2; n[k]++; for (c = 5; c <= 9; c++) v[k, n[k], c] = $c }
END {
    printf "\nvanilla vs ESCA (medians of %d runs; %s guest, kernel %s%s)\n\n", reps, toupper(accel), kernel, accel == "tcg" ? ": emulated, ratios indicative only" : ""
    printf "| server | mode | requests/s | p50 ms | p99 ms | traps/request | offloaded/request |\n"
    printf "|---|---|---|---|---|---|---|\n"
    ns = split(servers, sv, " ")
    for (s = 1; s <= ns; s++) {
        va = sv[s] " vanilla"; es = sv[s] " esca"
        if (!n[va] || !n[es]) continue
        for (c = 5; c <= 9; c++) { V[c] = med(c, va); E[c] = med(c, es) }
        printf "| %s | vanilla | %.1f | %.3f | %.3f | %.2f | %.2f |\n", sv[s], V[5], V[6], V[7], V[8], V[9]
        printf "| %s | ESCA | %.1f | %.3f | %.3f | %.2f | %.2f |\n", sv[s], E[5], E[6], E[7], E[8], E[9]
        printf "| %s | ESCA/vanilla | %.2f | %.2f | %.2f | %.2f | |\n", sv[s], V[5] ? E[5] / V[5] : 0, V[6] ? E[6] / V[6] : 0, V[7] ? E[7] / V[7] : 0, V[8] ? E[8] / V[8] : 0
    }
}' $OUT/runs
