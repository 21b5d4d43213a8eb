#!/bin/sh
# The five servers, unmodified, under the preload shim (boot with
# tests/vm/run --servers). For each: start it with LD_PRELOAD and
# ESCA_STATS=1, put its load tool on it, give that T_SHIM_WARM seconds
# (default 2) to reach its rate, and while it runs (checked: a tool that
# ended before the check did fails the server) let esca-check fetch (or set
# and get) 0 B, 1 B, 4 KiB, 64 KiB and 1 MiB objects over
# keep-alive, pipelined and one-request-per-connection, comparing every
# byte; then stop it cleanly and read the shim's counters from its log.
#
#   t-shim.sh [--no-module] [SERVER...]
#
# With the module loaded (default), at least 90% of the write/send/close
# family calls each server made must have gone through the rings by the
# shim's counters, and the module's consumers must have executed at least
# as many calls while the server ran (nothing else uses the module then);
# no deferred call may have failed, and the module's context must be gone
# once the server stopped. --no-module: esca.ko must not be loaded; the
# shim must say so once and every call goes direct, with the same bytes.
# One "PASS name (...)" or "FAIL name: why" line per server; exit 0 iff all
# pass.
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/servers/lib.sh
. "$HERE/lib.sh"
unset LD_PRELOAD
MODULE=1
if [ "${1:-}" = --no-module ]; then
    MODULE=0
    shift
fi
SERVERS=${*:-nginx lighttpd h2o redis memcached}
WWW=/tmp/www
OUT=/tmp/t-shim
ROUNDS=${T_SHIM_ROUNDS:-3}
CONNS=${T_SHIM_CONNS:-2}
WARM=${T_SHIM_WARM:-2}
mkdir -p "$OUT"
failed=0

fail() { # name why...
    n=$1
    shift
    echo "FAIL $n: $*"
    failed=$((failed + 1))
}

if [ $MODULE = 1 ]; then
    [ -r /proc/esca/stats ] || { echo "FAIL setup: esca.ko is not loaded"; exit 1; }
else
    [ ! -e /proc/esca/stats ] || { echo "FAIL setup: esca.ko is loaded (--no-module)"; exit 1; }
fi
www_make "$WWW" || { echo "FAIL setup: cannot make $WWW"; exit 1; }

# The load tool, in the background, until load_stop ends it.
load_start() { # NAME
    case "$1" in
        nginx | lighttpd | h2o)
            # wrk prints its summary when interrupted; -d only bounds it
            wrk -t1 -c4 -d300s "http://127.0.0.1:$(srv_port "$1")/4k.bin" >"$OUT/load.$1" 2>&1 & ;;
        redis)
            redis-benchmark -q -p 6379 -c 4 -n 100000000 -t set,get >"$OUT/load.$1" 2>&1 &
            ;;
        memcached)
            # 2 x 30,000 sets, 10-30 s under TCG; memcslap makes its keys
            # first, so a larger count delays the first set by seconds
            memcslap --servers=127.0.0.1:11211 --concurrency=2 --execute-number=30000 \
                --test=set >"$OUT/load.$1" 2>&1 & ;;
    esac
    LOAD_PID=$!
}

# Is the load tool still at work? (the check ran under load only if so)
load_running() {
    kill -0 "$LOAD_PID" 2>/dev/null
}

load_stop() { # NAME -> 0 if the tool saw no error (why in $OUT/why; not
    # in $(...): wait only knows this shell's children)
    case "$1" in
        nginx | lighttpd | h2o)
            kill -INT "$LOAD_PID" 2>/dev/null
            wait "$LOAD_PID"
            st=$?
            [ $st = 0 ] || { echo "wrk exited $st" >"$OUT/why"; return 1; }
            ! grep -E 'Non-2xx|Socket errors' "$OUT/load.$1" >"$OUT/why" || return 1
            awk '/requests in/ { r = $1 } END { exit !(r > 0) }' "$OUT/load.$1" || { echo "wrk made no request" >"$OUT/why"; return 1; }
            ;;
        *)
            # an endless benchmark: stop it (its own errors would be in
            # the log; the checking client is the verdict)
            kill "$LOAD_PID" 2>/dev/null
            wait "$LOAD_PID" 2>/dev/null
            ! tr '\r' '\n' <"$OUT/load.$1" | grep -i -E 'error|refused' >"$OUT/why" || return 1
            ;;
    esac
    return 0
}

check_client() { # NAME
    case "$1" in
        nginx | lighttpd | h2o) esca-check http 127.0.0.1 "$(srv_port "$1")" --rounds "$ROUNDS" --conns "$CONNS" ;;
        redis) esca-check redis 127.0.0.1 6379 --rounds "$ROUNDS" --conns "$CONNS" ;;
        memcached) esca-check memcached 127.0.0.1 11211 --rounds "$ROUNDS" --conns "$CONNS" ;;
    esac
}

# From the server's log: "offloaded all" summed over its processes for the
# calls that write, send or close.
offload_ratio() { # NAME
    srv_stats "$1" | awk '/^esca-stats-calls/ {
        for (i = 4; i <= NF; i++) {
            split($i, kv, "="); split(kv[2], n, "/")
            if (kv[1] ~ /^(write|writev|send|sendto|sendmsg|sendfile|close)$/) { off += n[1]; all += n[2] }
        }
    } END { print off + 0, all + 0 }'
}

for n in $SERVERS; do
    [ $MODULE = 1 ] && calls0=$(esca_consumer_calls)
    SRV_ENV="ESCA_STATS=1" srv_start "$n" --preload || { fail "$n" "did not start under the shim"; continue; }
    load_start "$n"
    # the load tools take a second or so to reach full rate under TCG
    sleep "$WARM"
    if ! check_client "$n" >"$OUT/check.$n" 2>&1; then
        fail "$n" "$(tail -n 2 "$OUT/check.$n" | tr '\n' ' ')"
        load_stop "$n"
        srv_stop "$n"
        continue
    fi
    summary=$(tail -n 1 "$OUT/check.$n")
    if ! load_running; then
        load_stop "$n"
        fail "$n" "the load tool ended before the checking client did (not under load): $(tr '\r' '\n' <"$OUT/load.$n" | tail -n 3 | tr '\n' ' ')"
        srv_stop "$n"
        continue
    fi
    if ! load_stop "$n"; then
        fail "$n" "load tool: $(head -c 300 "$OUT/why")"
        srv_stop "$n"
        continue
    fi
    srv_stop "$n" || { fail "$n" "did not stop cleanly"; continue; }
    if ! srv_stats "$n" | grep -q '^esca-stats '; then
        # the log's end says how the server went
        fail "$n" "no esca-stats line in its log (shim not loaded?); its last lines: $(tail -n 5 "$SRV_RUN/$n.log" | cut -c1-200 | tr '\n' '|')"
        continue
    fi
    if srv_stats "$n" | grep '^esca-stats ' | grep -v -q 'deferred_failed=0'; then
        fail "$n" "a deferred call failed: $(srv_stats "$n" | grep '^esca-stats ' | grep -v 'deferred_failed=0' | head -n 1)"
        continue
    fi
    set -- $(offload_ratio "$n")
    off=$1 all=$2
    if [ $MODULE = 1 ]; then
        [ "$all" -gt 0 ] || { fail "$n" "no write/send/close counted"; continue; }
        if [ $((off * 100)) -lt $((all * 90)) ]; then
            fail "$n" "only $off of $all write/send/close calls offloaded (< 90%)"
            srv_stats "$n" | sed 's/^/    /'
            continue
        fi
        # the server's contexts go with its processes
        i=0
        while ! grep -q 'live_contexts=0' /proc/esca/stats && [ $i -lt 50 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        grep -q 'live_contexts=0' /proc/esca/stats || { fail "$n" "contexts left: $(grep ^context /proc/esca/stats | tr '\n' ' ')"; continue; }
        # the module's side: its consumers ran at least those calls
        mod=$(($(esca_consumer_calls) - calls0))
        [ "$mod" -ge "$off" ] || { fail "$n" "the shim counted $off write/send/close offloaded, the module's consumers ran only $mod calls"; continue; }
        echo "PASS $n ($summary; $off/$all write/send/close offloaded; module: $mod calls run by its consumers)"
    else
        [ "$off" = 0 ] || { fail "$n" "$off calls offloaded without the module"; continue; }
        grep -q 'esca: cannot open /dev/esca: module not loaded; calls go direct' "$SRV_RUN/$n.log" ||
            { fail "$n" "no 'module not loaded' line in its log"; continue; }
        echo "PASS $n without the module ($summary; all $all write/send/close direct)"
    fi
done
echo "t-shim: $failed failed"
[ $failed = 0 ]
