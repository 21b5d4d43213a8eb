#!/bin/sh
# Each server under the shim, under load, killed with SIGKILL (every one of
# its processes at once): the module's contexts must all go, promptly, and
# the consumers keep running (the suite then checks the kernel log).
# Boot with tests/vm/run --servers. One PASS/FAIL line per server.
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/servers/lib.sh
. "$HERE/lib.sh"
unset LD_PRELOAD
OUT=/tmp/t-kill9
mkdir -p "$OUT"
failed=0
[ -r /proc/esca/stats ] || { echo "FAIL setup: esca.ko is not loaded"; exit 1; }
www_make /tmp/www || { echo "FAIL setup: cannot make /tmp/www"; exit 1; }
for n in ${*:-nginx lighttpd h2o redis memcached}; do
    srv_start "$n" --preload || { echo "FAIL $n: did not start"; failed=$((failed + 1)); continue; }
    port=$(srv_port "$n")
    case "$n" in
        redis) redis-benchmark -q -p 6379 -c 8 -n 1000000 -t set,get >"$OUT/load" 2>&1 & ;;
        memcached) memcslap --servers=127.0.0.1:11211 --concurrency=4 --execute-number=100000 --test=set >"$OUT/load" 2>&1 & ;;
        *) wrk -t1 -c8 -d30s "http://127.0.0.1:$port/64k.bin" >"$OUT/load" 2>&1 & ;;
    esac
    load=$!
    sleep 2
    ctx=$(grep -c '^context ' /proc/esca/stats)
    pids=$(srv_pids "$n")
    # shellcheck disable=SC2086
    kill -KILL $pids
    kill "$load" 2>/dev/null
    wait "$load" 2>/dev/null
    srv_stop "$n" >/dev/null 2>&1   # reaps; it is dead already
    i=0
    while ! grep -q 'live_contexts=0' /proc/esca/stats && [ $i -lt 100 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    if ! grep -q 'live_contexts=0' /proc/esca/stats; then
        echo "FAIL $n: contexts left 10 s after kill -9: $(grep '^context ' /proc/esca/stats | tr '\n' ' ')"
        failed=$((failed + 1))
    elif [ "$ctx" -lt 1 ]; then
        echo "FAIL $n: no context while under load (nothing offloaded?)"
        failed=$((failed + 1))
    else
        echo "PASS $n ($ctx contexts under load, none left $((i * 100)) ms after kill -9)"
    fi
done
grep '^consumer' /proc/esca/stats | grep -q 'state=offline' && { echo "FAIL consumers: one went offline"; failed=$((failed + 1)); }
[ $failed = 0 ]
