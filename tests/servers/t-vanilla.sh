#!/bin/sh
# The five servers, unmodified and without the shim, in the guest (boot with
# tests/vm/run --servers): each starts from lib.sh, serves correct data under
# load, and stops cleanly; numactl pins a process to CPU 0. One line per
# server, "PASS name (figures)" or "FAIL name: why"; exit 0 iff all pass.
# Load (TCG: figures indicative only): wrk -t1 -c4 -d3s on /4k.bin for the
# HTTP servers, redis-benchmark -q -n 2000 -t set,get, memcslap (libmemcached's
# memslap) 4 x 250 sets then gets, memcaslap (its memaslap) 2000 operations.
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/servers/lib.sh
. "$HERE/lib.sh"
unset LD_PRELOAD
WWW=/tmp/www
OUT=/tmp/t-vanilla
mkdir -p "$OUT"
failed=0

fail() { # name why...
    n=$1
    shift
    echo "FAIL $n: $*"
    failed=$((failed + 1))
}

# run_http NAME: every docroot file fetched matches, then wrk's load.
run_http() {
    n=$1
    port=$(srv_port "$n")
    for spec in $WWW_FILES; do
        f=${spec#*:} len=${spec%%:*}
        rm -f "$OUT/$f"
        if ! wget -q -O "$OUT/$f" "http://127.0.0.1:$port/$f"; then
            fail "$n" "GET /$f failed"; return
        fi
        www_check "$OUT/$f" "$len" || { fail "$n" "GET /$f: body is not the expected $len bytes"; return; }
    done
    wrk -t1 -c4 -d3s "http://127.0.0.1:$port/4k.bin" >"$OUT/wrk.$n" 2>&1 ||
        { fail "$n" "wrk exited $?: $(tail -n 3 "$OUT/wrk.$n" | tr '\n' ' ')"; return; }
    if grep -q -E 'Non-2xx|Socket errors' "$OUT/wrk.$n"; then
        fail "$n" "wrk saw errors: $(grep -E 'Non-2xx|Socket errors' "$OUT/wrk.$n" | tr '\n' ' ')"; return
    fi
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$OUT/wrk.$n")
    reqs=$(awk '/requests in/ { print $1 }' "$OUT/wrk.$n")
    lat=$(awk '$1 == "Latency" { print $2 }' "$OUT/wrk.$n")
    [ "${reqs:-0}" -gt 0 ] || { fail "$n" "wrk made no request: $(cat "$OUT/wrk.$n")"; return; }
    RESULT="wrk 4k.bin: $rps req/s, $reqs requests, latency avg $lat"
}

run_redis() {
    v=esca-$$-value
    r=$(redis-cli -p 6379 set esca-key "$v" 2>&1)
    [ "$r" = OK ] || { fail redis "SET answered '$r'"; return; }
    r=$(redis-cli -p 6379 get esca-key 2>&1)
    [ "$r" = "$v" ] || { fail redis "GET answered '$r', not '$v'"; return; }
    redis-benchmark -q -p 6379 -n 2000 -t set,get >"$OUT/rb" 2>&1 ||
        { fail redis "redis-benchmark exited $?: $(tail -n 3 "$OUT/rb")"; return; }
    # -q prints progress with carriage returns, then "SET: N requests per second, ..."
    set_rps=$(tr '\r' '\n' <"$OUT/rb" | awk '/^SET: .* requests per second/ { print $2 }' | tail -n 1)
    get_rps=$(tr '\r' '\n' <"$OUT/rb" | awk '/^GET: .* requests per second/ { print $2 }' | tail -n 1)
    if [ -z "$set_rps" ] || [ -z "$get_rps" ]; then
        fail redis "redis-benchmark printed no SET/GET result: $(tr '\r' '\n' <"$OUT/rb" | tail -n 3)"; return
    fi
    calls=$(redis-cli -p 6379 info commandstats | tr -d '\r' | awk -F'[=:,]' '
        /^cmdstat_(set|get):/ { s += $3 } END { print s + 0 }')
    [ "$calls" -ge 4000 ] || { fail redis "server counted $calls SET+GET, expected >= 4000"; return; }
    RESULT="redis-benchmark: SET $set_rps req/s, GET $get_rps req/s"
}

memc_stat() { # NAME -> memcached's counter
    printf 'stats\r\nquit\r\n' | timeout 5 nc 127.0.0.1 11211 | tr -d '\r' | awk -v k="$1" '$2 == k { print $3 }'
}

run_memcached() {
    r=$(printf 'set esca-key 0 0 5\r\nhello\r\nget esca-key\r\nquit\r\n' | timeout 5 nc 127.0.0.1 11211 | tr -d '\r' | tr '\n' ' ')
    [ "$r" = "STORED VALUE esca-key 0 5 hello END " ] || { fail memcached "set/get answered '$r'"; return; }
    sets0=$(memc_stat cmd_set) hits0=$(memc_stat get_hits)
    # memcslap prints "Time to set 1000 keys by 4 threads: 0.049 seconds."
    # (--test=get first sets its keys, then gets them: all should hit)
    for t in set get; do
        memcslap --servers=127.0.0.1:11211 --concurrency=4 --execute-number=250 --test=$t \
            >"$OUT/ms.$t" 2>&1 || { fail memcached "memcslap --test=$t exited $?: $(tail -n 3 "$OUT/ms.$t")"; return; }
        awk -v t=$t '$1 == "Time" && $3 == t && $4 == 1000 && $7 == 4 { print $(NF - 1); ok = 1 }
            END { exit !ok }' "$OUT/ms.$t" >"$OUT/ms.$t.took" ||
            { fail memcached "memcslap --test=$t did not report 1000 ${t}s: $(cat "$OUT/ms.$t")"; return; }
    done
    sets=$(($(memc_stat cmd_set) - sets0)) hits=$(($(memc_stat get_hits) - hits0))
    [ "$sets" -ge 1250 ] || { fail memcached "server counted $sets sets from memcslap, expected >= 1250"; return; }
    [ "$hits" -ge 1000 ] || { fail memcached "server counted $hits get hits from memcslap, expected >= 1000"; return; }
    # memaslap: the tool bench/servers drives (Debian names it memcaslap)
    memcaslap -s 127.0.0.1:11211 -T 1 -c 4 -x 2000 >"$OUT/ma" 2>&1 ||
        { fail memcached "memcaslap exited $?: $(tail -n 3 "$OUT/ma")"; return; }
    tps=$(awk '/^Run time:/ { for (i = 1; i <= NF; i++) if ($i == "TPS:") print $(i + 1) }' "$OUT/ma")
    [ -n "$tps" ] || { fail memcached "memcaslap printed no TPS: $(tail -n 5 "$OUT/ma")"; return; }
    RESULT="memcslap 1000 sets in $(cat "$OUT/ms.set.took") s, 1000 gets in $(cat "$OUT/ms.get.took") s; memcaslap $tps ops/s"
}

# ---------------------------------------------------------------- the docroot
www_make "$WWW" || { echo "FAIL www_make"; exit 1; }
for spec in $WWW_FILES; do
    www_check "$WWW/${spec#*:}" "${spec%%:*}" || { echo "FAIL www_make: ${spec#*:} has the wrong content"; exit 1; }
done

for n in nginx lighttpd h2o redis memcached; do
    t0=$(cut -d' ' -f1 /proc/uptime)
    srv_start "$n" || { fail "$n" "did not start"; continue; }
    t1=$(cut -d' ' -f1 /proc/uptime)
    npids=$(srv_pids "$n" | wc -l)
    RESULT=
    before=$failed
    case "$n" in
        redis) run_redis ;;
        memcached) run_memcached ;;
        *) run_http "$n" ;;
    esac
    if ! srv_stop "$n"; then
        [ $failed = "$before" ] && fail "$n" "did not stop cleanly"
        continue
    fi
    if srv__probe "$n" "$(srv_port "$n")"; then
        [ $failed = "$before" ] && fail "$n" "still answers after srv_stop"
        continue
    fi
    [ $failed = "$before" ] || continue
    t2=$(cut -d' ' -f1 /proc/uptime)
    echo "PASS $n (started in $(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }") s, $npids processes;" \
        "$RESULT; $(awk "BEGIN { printf \"%.0f\", $t2 - $t0 }") s in all)"
done

# numactl: the benchmarks pin servers and load tools with --physcpubind.
cpus=$(numactl --physcpubind=0 -- sh -c 'grep "^Cpus_allowed_list:" /proc/self/status' 2>&1)
case "$cpus" in
    *"Cpus_allowed_list:"*[[:space:]]0) echo "PASS numactl (--physcpubind=0: ${cpus#*:	})" ;;
    *) fail numactl "--physcpubind=0 gave '$cpus'" ;;
esac

[ $failed = 0 ] && echo "t-vanilla: all passed" && exit 0
echo "t-vanilla: $failed failed"
exit 1
