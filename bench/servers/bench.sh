#!/bin/sh
# make bench, guest side (busybox sh, booted by bench/servers/run with
# --servers and without the module): Debian's nginx, lighttpd, h2o,
# redis-server and memcached, each vanilla and under ESCA, driven by wrk,
# redis-benchmark and memaslap (Debian's memcaslap), all pinned with
# numactl on the CPUs esca-affinity chooses. The module is loaded here with
# esca-affinity's cores= value.
#
# Three modes per server, the two comparisons of the README:
#   vanilla        the server on the application CPUs (APP)
#   esca           the same CPUs under the shim, plus one consumer core
#                  (same application cores: ESCA adds the consumer)
#   vanilla-total  the server on APP + the consumer's CPU, no module in
#                  use (same total cores: vanilla gets the core as one more
#                  CPU for its workers or threads)
# The load tool runs on esca-affinity's load-generator CPUs.
#
# Per run: requests, requests/s, p50/p99 ms, CPU time on the server's CPUs
# per request (from /proc/stat), traps per request on those CPUs
# (esca-traps), calls the consumer ran per request, consumer CPU time per
# request. memaslap reports latency in powers of two: its p50/p99 are the
# upper bound of the bucket the percentile falls in.
#
# Output on stdout: progress lines "bench: ...", one "bench-meta: K=V" line
# per setting, one "bench-csv: ..." line per run (header first). The host
# side (bench/servers/run) turns them into runs.csv, table.md and plots.
#
# Env: BENCH_SERVERS (default all five), BENCH_SIZES (default "16k 128k"),
# BENCH_CONNS (default "8 64"), BENCH_REPS (default 3), BENCH_SECONDS
# (default 5), BENCH_APP_CPUS (default 0), BENCH_ESCA_ENV (default
# ESCA_SPIN_US=200000), BENCH_INSMOD (extra insmod arguments, default
# idle_us=200000), BENCH_QUICK=1 (sizes 16k, conns 16, 1 rep, 3 s).
#
# Natively (where the module loads), as root: ESCA_ROOT names a tree laid
# out like the guest's /esca (bin/, lib/ and esca.ko as make guest leaves
# them in build/k<K>/root, plus configs/ and tests/servers/); the servers
# and load tools at their Debian paths.
set -u
E=${ESCA_ROOT:-/esca}
SRV_CONFIGS=${SRV_CONFIGS:-$E/configs}
SRV_PRELOAD=${SRV_PRELOAD:-$E/lib/libesca-preload.so}
. $E/tests/servers/lib.sh
PATH=$E/bin:$PATH

if [ "${BENCH_QUICK:-0}" = 1 ]; then
    d_sizes=16k d_conns=16 d_reps=1 d_secs=3
else
    d_sizes="16k 128k" d_conns="8 64" d_reps=3 d_secs=5
fi
SERVERS=${BENCH_SERVERS:-nginx lighttpd h2o redis memcached}
SIZES=${BENCH_SIZES:-$d_sizes}
CONNS=${BENCH_CONNS:-$d_conns}
REPS=${BENCH_REPS:-$d_reps}
SECS=${BENCH_SECONDS:-$d_secs}
APP=${BENCH_APP_CPUS:-0}
ESCA_ENV=${BENCH_ESCA_ENV-ESCA_SPIN_US=200000}
INSMOD=${BENCH_INSMOD-idle_us=200000}
MODES="vanilla esca vanilla-total"
OUT=/tmp/bench
WWW=/tmp/www
mkdir -p $OUT

die() { echo "bench: $*" >&2; exit 1; }

for s in $SERVERS; do
    srv_port "$s" >/dev/null 2>&1 || die "BENCH_SERVERS: unknown server '$s' (one of: $SRV_NAMES)"
done
for z in $SIZES; do
    case "$z" in [1-9]*k | [1-9]*) ;; *) die "BENCH_SIZES: '$z' is not a size (such as 16k or 512)" ;; esac
    case "${z%k}" in *[!0-9]*) die "BENCH_SIZES: '$z' is not a size (such as 16k or 512)" ;; esac
done
case "$(echo $CONNS $REPS $SECS | tr -d ' ')" in
    "" | *[!0-9]*) die "BENCH_CONNS, BENCH_REPS and BENCH_SECONDS are numbers" ;;
esac
[ "$REPS" -ge 1 ] && [ "$SECS" -ge 1 ] || die "BENCH_REPS and BENCH_SECONDS must be at least 1"

bytes() { case "$1" in *k) echo $((${1%k} * 1024)) ;; *) echo "$1" ;; esac; }

# ---------------------------------------------------------------- the cores
aff=$(esca-affinity --json --consumers 1 --app-cpus "$APP") ||
    die "esca-affinity --consumers 1 --app-cpus $APP exited $? (give the guest more vCPUs: ESCA_VM_SMP)"
CONS=$(echo "$aff" | sed -n 's/.*"consumers":\[\([0-9,]*\)\].*/\1/p')
SRV=$(echo "$aff" | sed -n 's/.*"server":"\([0-9,-]*\)".*/\1/p')
LOADC=$(echo "$aff" | sed -n 's/.*"loadgen":"\([0-9,-]*\)".*/\1/p')
CORES=$(esca-affinity --cores-only --consumers 1 --app-cpus "$APP")
[ -n "$CONS" ] && [ -n "$SRV" ] && [ -n "$LOADC" ] ||
    die "esca-affinity left no CPU for the load generator: $aff (give the guest more vCPUs)"
TOTAL="$SRV,$CONS"
esca-affinity --consumers 1 --app-cpus "$APP" | sed 's/^/bench: esca-affinity: /'
lsmod 2>/dev/null | grep -q '^esca ' && rmmod esca
# shellcheck disable=SC2086
insmod $E/esca.ko cores="$CORES" dev_mode=0666 $INSMOD || die "insmod esca.ko cores=$CORES $INSMOD failed"
grep -q "^consumer cpu=$CONS " /proc/esca/stats || die "the consumer is not on CPU $CONS"

# ---------------------------------------------------------------- docroot
www_make $WWW || die "cannot make the docroot"
for z in $SIZES; do
    [ -f $WWW/b$z.bin ] || head -c "$(bytes "$z")" /dev/urandom >$WWW/b$z.bin || die "cannot write $WWW/b$z.bin"
done
chmod 0644 $WWW/*.bin

# ---------------------------------------------------------------- counters
# busy USER_HZ ticks of the CPUs in LIST (a numactl list: 0,2 or 0-1)
cpu_ticks() {
    numactl --physcpubind="$1" --show 2>/dev/null | sed -n 's/^physcpubind: *//p' |
        awk 'NR == FNR { for (i = 1; i <= NF; i++) want["cpu" $i] = 1; next }
             ($1 in want) { s += $2 + $3 + $4 + $7 + $8 + $9 } END { print s + 0 }' - /proc/stat
}

# ---------------------------------------------------------------- one run
# load SERVER SIZE CONNS TRAPCPUS: leaves "requests rps p50 p99" in $OUT/load
load() {
    port=$(srv_port "$1") n=$(bytes "$2")
    case "$1" in
        redis)
            # about SECS seconds of requests at what TCG gives (fewer for big values)
            reqs=$((SECS * 800 * 16384 / (n + 16384) + 200))
            numactl --physcpubind="$LOADC" redis-benchmark -p "$port" -c "$3" -n 300 -d "$n" -t set -q >/dev/null 2>&1
            esca-traps -c "$4" -o $OUT/traps -- numactl --physcpubind="$LOADC" \
                redis-benchmark -p "$port" -c "$3" -n "$reqs" -d "$n" -t get --csv >$OUT/tool 2>&1 || return 1
            load_redis_summary $OUT/tool "$reqs" >$OUT/load ;;
        memcached)
            esca-traps -c "$4" -o $OUT/traps -- numactl --physcpubind="$LOADC" \
                memcaslap -s "127.0.0.1:$port" -T 1 -c "$3" -X "$n" -t "${SECS}s" -S "${SECS}s" >$OUT/tool 2>&1 || return 1
            # Total Statistics' Log2 Dist: "K: c c c c" counts of [2^K, 2^(K+1)) us ...
            awk '/^Total Statistics \(/ { t = 1 } t && /^ +[0-9]+:/ { k = $1 + 0;
                     for (i = 2; i <= NF; i++) { c[k + i - 2] = $i; tot += $i; if (k + i - 2 > top) top = k + i - 2 } }
                 t && /^cmd_get/ { t = 0 }
                 /^Run time:/ { for (i = 1; i <= NF; i++) { if ($i == "Ops:") ops = $(i + 1); if ($i == "TPS:") tps = $(i + 1) } }
                 END { if (!ops || !tot) exit 1
                       # (busybox awk has no ^: the bound doubles per bucket)
                       for (b = 0; b <= top; b++) { s += c[b]; ub = b ? ub * 2 : 2
                           if (!p50 && s >= tot * 0.5) p50 = ub / 1000
                           if (!p99 && s >= tot * 0.99) p99 = ub / 1000 }
                       printf "%d %s %.3f %.3f\n", ops, tps, p50, p99 }' $OUT/tool >$OUT/load ;;
        *)
            esca-traps -c "$4" -o $OUT/traps -- numactl --physcpubind="$LOADC" \
                wrk -t1 -c"$3" -d"${SECS}s" --latency "http://127.0.0.1:$port/b$2.bin" >$OUT/tool 2>&1 || return 1
            if grep -q -E 'Non-2xx|Socket errors' $OUT/tool; then
                echo "bench: warning: $1: $(grep -E 'Non-2xx|Socket errors' $OUT/tool | tr -s ' ')" >&2
            fi
            load_wrk_summary $OUT/tool >$OUT/load ;;
    esac
}

warm() {  # SERVER: connections, caches
    port=$(srv_port "$1")
    case "$1" in
        redis) numactl --physcpubind="$LOADC" redis-benchmark -p "$port" -c 4 -n 200 -t ping -q >/dev/null 2>&1 ;;
        memcached) numactl --physcpubind="$LOADC" memcaslap -s "127.0.0.1:$port" -T 1 -c 4 -x 200 >/dev/null 2>&1 ;;
        *) for z in $SIZES; do
               numactl --physcpubind="$LOADC" wrk -t1 -c4 -d1s "http://127.0.0.1:$port/b$z.bin" >/dev/null 2>&1
           done ;;
    esac
}

nruns=0
for s in $SERVERS; do for z in $SIZES; do for c in $CONNS; do nruns=$((nruns + 3 * REPS)); done; done; done
done_runs=0
t_start=$(date +%s)
failures=0

# run SERVER MODE SIZE CONNS REP CPUS: one measurement, one CSV row
run() {
    srv=$1 mode=$2 size=$3 conns=$4 rep=$5 cpus=$6
    elapsed=$(($(date +%s) - t_start))
    left=
    [ $done_runs -gt 0 ] && left="; about $(((elapsed * (nruns - done_runs) / done_runs + 59) / 60)) min left"
    echo "bench: [$((done_runs + 1))/$nruns] $srv $mode $size c=$conns run $rep of $REPS$left"
    done_runs=$((done_runs + 1))
    c0=$(esca_consumer_calls) s0=$(cpu_ticks "$cpus") k0=$(cpu_ticks "$CONS")
    if ! load "$srv" "$size" "$conns" "$cpus"; then
        echo "bench: FAIL $srv $mode $size c=$conns: the load tool failed:" >&2
        tail -n 5 $OUT/tool | sed 's/^/bench:   /' >&2
        failures=$((failures + 1))
        return 1
    fi
    c1=$(esca_consumer_calls) s1=$(cpu_ticks "$cpus") k1=$(cpu_ticks "$CONS")
    traps=$(sed -n 's/.* total=\([0-9]*\).*/\1/p' $OUT/traps)
    read -r reqs rps p50 p99 <$OUT/load
    if [ -z "$reqs" ] || [ "$reqs" -le 0 ] || [ -z "$traps" ]; then
        echo "bench: FAIL $srv $mode $size c=$conns: no requests completed or no trap count" >&2
        failures=$((failures + 1))
        return 1
    fi
    # consumer CPU time counts only for esca (in vanilla-total the
    # consumer's CPU is the server's own and already in the server column)
    kt=$((k1 - k0))
    [ "$mode" = esca ] || kt=0
    awk -v s="$srv" -v m="$mode" -v z="$size" -v c="$conns" -v r="$rep" -v q="$reqs" \
        -v rps="$rps" -v p50="$p50" -v p99="$p99" -v st=$((s1 - s0)) -v kt=$kt \
        -v hz=100 -v t="$traps" -v o=$((c1 - c0)) -v cpus="$cpus" 'BEGIN {
        printf "bench-csv: %s,%s,%s,%d,%d,%d,%.1f,%.3f,%.3f,%.1f,%.1f,%.2f,%.2f,%s\n", s, m, z, c, r, q, rps, p50, p99,
            st * 1e6 / hz / q, kt * 1e6 / hz / q, t / q, o / q, cpus }'
}

# ---------------------------------------------------------------- header
accel=$(sed -n 's/.*esca_accel=\([a-z]*\).*/\1/p' /proc/cmdline)
echo "bench-meta: where=${accel:-unknown}"
echo "bench-meta: kernel=$(uname -r)"
echo "bench-meta: vcpus=$(grep -c ^processor /proc/cpuinfo)"
echo "bench-meta: clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null)"
echo "bench-meta: server_cpus=$SRV consumer_cpus=$CONS load_cpus=$LOADC vanilla_total_cpus=$TOTAL"
echo "bench-meta: insmod=cores=$CORES $INSMOD"
echo "bench-meta: esca_env=${ESCA_ENV:-defaults}"
echo "bench-meta: sizes=$SIZES conns=$CONNS reps=$REPS seconds=$SECS"
echo "bench-meta: load=wrk -t1 --latency GET /bSIZE.bin keep-alive; redis-benchmark -t get -d SIZE; memaslap -T 1 -X SIZE (90% get)"
echo "bench-meta: servers=nginx 2 workers, lighttpd 1 process, h2o 2 threads, redis io-threads 2, memcached 4 threads (configs/)"
echo "bench-csv: server,mode,size,conns,rep,requests,rps,p50_ms,p99_ms,app_cpu_us_per_req,consumer_cpu_us_per_req,traps_per_req,offloaded_per_req,server_cpus"
echo "bench: $nruns runs: servers $SERVERS; sizes $SIZES; connections $CONNS; $REPS runs each of vanilla, esca, vanilla-total; ${SECS} s of load each"

# Reps alternate the modes; each start serves every size and connection
# count, so a server starts 3 x REPS times.
for srv in $SERVERS; do
    r=1
    while [ $r -le "$REPS" ]; do
        for mode in $MODES; do
            cpus=$SRV pre= env=
            case $mode in
                esca) pre=--preload env="ESCA_STATS=1 $ESCA_ENV" ;;
                vanilla-total) cpus=$TOTAL ;;
            esac
            if ! SRV_WRAP="numactl --physcpubind=$cpus" SRV_ENV="$env" srv_start "$srv" $pre; then
                echo "bench: FAIL $srv ($mode) did not start" >&2
                failures=$((failures + 1))
                for z in $SIZES; do for c in $CONNS; do done_runs=$((done_runs + 1)); done; done
                continue
            fi
            warm "$srv"
            for z in $SIZES; do
                for c in $CONNS; do
                    run "$srv" "$mode" "$z" "$c" "$r" "$cpus"
                done
            done
            srv_stop "$srv" || { echo "bench: FAIL $srv ($mode) did not stop cleanly" >&2; failures=$((failures + 1)); }
            [ "$mode" = esca ] && srv_stats "$srv" | grep '^esca-stats ' | tail -n 1 | sed 's/^/bench:   /'
        done
        r=$((r + 1))
    done
done
rmmod esca || { echo "bench: FAIL rmmod esca" >&2; failures=$((failures + 1)); }
# The kernel log since boot, judged by the guest suite's own pattern: a
# WARNING, BUG, oops, lockup or stall during a benchmark is a failure too.
bad_re=$(sed -n "s/^BAD='\(.*\)'$/\1/p" $E/tests/suite.sh)
if [ -z "$bad_re" ] || ! $E/tests/t-klog since 0 >$OUT/klog 2>&1; then
    echo "bench: FAIL the kernel log could not be read or judged" >&2
    failures=$((failures + 1))
elif grep -Eq "$bad_re" $OUT/klog; then
    echo "bench: FAIL the kernel log shows a problem:" >&2
    grep -E -B2 -A20 "$bad_re" $OUT/klog | head -60 | sed 's/^/bench:   | /' >&2
    failures=$((failures + 1))
else
    echo "bench: kernel log: 0 problem lines since boot"
fi
echo "bench: done in $(($(date +%s) - t_start)) s, $failures failures"
[ $failures -eq 0 ]
