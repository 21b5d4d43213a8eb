# Real servers in the guest, for tests/servers/t-*.sh (sourced; busybox sh).
# shellcheck shell=sh disable=SC3043  # `local`: busybox ash and dash have it
#
#   srv_start NAME [--preload]  start NAME from $SRV_CONFIGS (with the ESCA shim
#                               preloaded if --preload), wait until it answers
#                               on its port; on failure print why and its log
#   srv_stop NAME               TERM it, wait for it and its children to exit;
#                               fails if they do not or it exits non-zero
#   srv_pids NAME               its processes (main pid first), one a line
#   srv_port NAME               its TCP port on 127.0.0.1
#   srv_stats NAME              the shim's esca-stats and esca-stats-calls
#                               lines from its log, each from "esca-stats" on
#   www_make DIR                the docroot files 0.bin 1.bin 4k.bin 64k.bin 1m.bin
#   www_check FILE N            0 iff FILE is what www_make writes for N bytes
#                               (recomputed, not compared with the docroot)
#   WWW_FILES                   "N:name" for each docroot file
#   esca_consumer_calls         the sum of every consumer's calls= counter
#   load_wrk_summary FILE       "requests rps p50_ms p99_ms" from wrk --latency's
#                               output (empty fields where it has none)
#   load_redis_summary FILE N   the same from redis-benchmark --csv's GET line
#                               (N requests), or fails
#
# NAME: nginx lighttpd h2o redis memcached. Every function returns non-zero
# with one "srv: ..." line on stderr when it fails. Call srv_start and
# srv_stop from the same shell (not in $(...)): srv_stop reaps the server
# with `wait` to learn its exit status.
#
# Environment (defaults are the guest's paths):
#   SRV_CONFIGS=/esca/configs  SRV_PRELOAD=/esca/lib/libesca-preload.so
#   SRV_RUN=/tmp/srv (logs NAME.log, pids NAME.pid)
#   SRV_START_TIMEOUT=60  SRV_STOP_TIMEOUT=30 (seconds; TCG is 10-50x slow)
#   SRV_ENV="VAR=value ..."  extra environment for the server (e.g. ESCA_STATS=1)
#   SRV_WRAP="CMD ARGS"      a command the server runs under, such as
#                            "numactl --physcpubind=0" (it must exec the rest)

SRV_CONFIGS=${SRV_CONFIGS:-/esca/configs}
SRV_PRELOAD=${SRV_PRELOAD:-/esca/lib/libesca-preload.so}
SRV_RUN=${SRV_RUN:-/tmp/srv}
SRV_START_TIMEOUT=${SRV_START_TIMEOUT:-60}
SRV_STOP_TIMEOUT=${SRV_STOP_TIMEOUT:-30}
SRV_ENV=${SRV_ENV:-}
SRV_WRAP=${SRV_WRAP:-}
SRV_NAMES="nginx lighttpd h2o redis memcached"
WWW_FILES="0:0.bin 1:1.bin 4096:4k.bin 65536:64k.bin 1048576:1m.bin"

srv__err() { echo "srv: $*" >&2; }

# Ports must match configs/ (srv_start fails if the server is not there).
srv_port() {
    case "$1" in
        nginx) echo 8080 ;;
        lighttpd) echo 8081 ;;
        h2o) echo 8082 ;;
        redis) echo 6379 ;;
        memcached) echo 11211 ;;
        *) srv__err "unknown server '$1' (one of: $SRV_NAMES)"; return 1 ;;
    esac
}

srv__log_tail() {  # NAME: the server's log, indented, on stderr
    echo "srv: --- last lines of $SRV_RUN/$1.log ---" >&2
    tail -n 30 "$SRV_RUN/$1.log" 2>/dev/null | sed 's/^/    /' >&2
    echo "srv: --- end of $1's log ---" >&2
}

# 0 if PID is a live process (a zombie, exited but not yet reaped, is not).
srv__alive() {
    [ -r "/proc/$1/stat" ] || return 1
    case "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null)" in Z* | X* | "") return 1 ;; esac
    return 0
}

srv__pid() {  # NAME -> the pid srv_start recorded
    cat "$SRV_RUN/$1.pid" 2>/dev/null
}

# Ask the server something in its own protocol; 0 if it answered correctly.
# Each request asks the server to close the connection afterwards, so nc ends.
# HTTP: any status counts (404 before www_make), /0.bin so that a made
# docroot leaves no error line in the server's log.
srv__probe() {  # NAME PORT
    case "$1" in
        nginx | lighttpd | h2o)
            printf 'HEAD /0.bin HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' |
                timeout 5 nc 127.0.0.1 "$2" 2>/dev/null | head -n 1 | grep -q '^HTTP/1\.[01] [0-9]' ;;
        redis)
            printf 'PING\r\nQUIT\r\n' | timeout 5 nc 127.0.0.1 "$2" 2>/dev/null | grep -q '^+PONG' ;;
        memcached)
            printf 'version\r\nquit\r\n' | timeout 5 nc 127.0.0.1 "$2" 2>/dev/null | grep -q '^VERSION ' ;;
    esac
}

# The command line that runs NAME in the foreground, one word a line.
srv__argv() {
    case "$1" in
        nginx) printf '%s\n' /usr/sbin/nginx -p /tmp/nginx/ -c "$SRV_CONFIGS/nginx.conf" ;;
        lighttpd) printf '%s\n' /usr/sbin/lighttpd -D -f "$SRV_CONFIGS/lighttpd.conf" ;;
        h2o) printf '%s\n' /usr/bin/h2o -m worker -c "$SRV_CONFIGS/h2o.conf" ;;
        redis) printf '%s\n' /usr/bin/redis-server "$SRV_CONFIGS/redis.conf" ;;
        memcached)
            echo /usr/bin/memcached
            sed -e 's/#.*//' "$SRV_CONFIGS/memcached.args" | tr '\t' ' ' | tr -s ' ' '\n' | grep -v '^$' ;;
    esac
}

srv_start() {
    local _name="$1" _pre='' _pid _port _argv _w _t0
    srv_port "$_name" >/dev/null || return 1
    case "${2:-}" in
        "") ;;
        --preload)
            [ -r "$SRV_PRELOAD" ] || { srv__err "srv_start $_name: no shim at $SRV_PRELOAD"; return 1; }
            _pre="LD_PRELOAD=$SRV_PRELOAD" ;;
        *) srv__err "srv_start $_name: unknown option '$2' (only --preload)"; return 1 ;;
    esac
    _pid=$(srv__pid "$_name")
    if [ -n "$_pid" ] && srv__alive "$_pid"; then
        srv__err "srv_start $_name: already running (pid $_pid)"; return 1
    fi
    _port=$(srv_port "$_name")
    if srv__probe "$_name" "$_port"; then
        srv__err "srv_start $_name: something already answers on 127.0.0.1:$_port"; return 1
    fi
    mkdir -p "$SRV_RUN" /tmp/nginx /tmp/lighttpd /tmp/h2o /tmp/redis || return 1
    _argv=$(srv__argv "$_name")
    for _w in $_argv; do
        [ -e "$_w" ] || case "$_w" in /usr/*) srv__err "srv_start $_name: $_w missing (boot with tests/vm/run --servers)"; return 1 ;; esac
    done
    # env(1) puts the shim in the server's environment only, then execs it,
    # so $! is the server's own pid. Word splitting of $_argv is wanted: no
    # argument contains blanks.
    # shellcheck disable=SC2086
    env $SRV_ENV $_pre $SRV_WRAP $_argv >"$SRV_RUN/$_name.log" 2>&1 </dev/null &
    _pid=$!
    echo "$_pid" >"$SRV_RUN/$_name.pid"
    _t0=$(date +%s)
    while :; do
        if srv__probe "$_name" "$_port"; then return 0; fi
        if ! srv__alive "$_pid"; then
            wait "$_pid" 2>/dev/null
            srv__err "srv_start $_name: exited with status $? before answering on 127.0.0.1:$_port"
            rm -f "$SRV_RUN/$_name.pid"
            srv__log_tail "$_name"; return 1
        fi
        if [ $(($(date +%s) - _t0)) -ge "$SRV_START_TIMEOUT" ]; then
            srv__err "srv_start $_name: no answer on 127.0.0.1:$_port within $SRV_START_TIMEOUT s; killing it"
            kill -KILL "$_pid" 2>/dev/null
            wait "$_pid" 2>/dev/null
            rm -f "$SRV_RUN/$_name.pid"
            srv__log_tail "$_name"; return 1
        fi
        sleep 0.2
    done
}

# Processes whose parent is PID, recursively (nginx's workers).
srv__children() {
    local _c
    grep -s '^PPid:' /proc/[0-9]*/status | awk -v p="$1" '$2 == p { split($1, a, "/"); print a[3] }' |
        while read -r _c; do
            echo "$_c"
            srv__children "$_c"
        done
}

# The shim writes each line in one write(2), but a server thread may have
# left a line unfinished (h2o, printing as another thread exits): the
# line then starts after that text, not at the start of the log's line.
srv_stats() {
    sed -n 's/^.*\(esca-stats\(-calls\)\{0,1\} pid=\)/\1/p' "$SRV_RUN/$1.log"
}

srv_pids() {
    local _pid
    srv_port "$1" >/dev/null || return 1
    _pid=$(srv__pid "$1")
    if [ -z "$_pid" ] || ! srv__alive "$_pid"; then
        srv__err "srv_pids $1: not running"; return 1
    fi
    echo "$_pid"
    srv__children "$_pid"
}

srv_stop() {
    local _name="$1" _pid _all _t0 _left _p _st
    srv_port "$_name" >/dev/null || return 1
    _pid=$(srv__pid "$_name")
    if [ -z "$_pid" ]; then
        srv__err "srv_stop $_name: not running (not started by srv_start)"; return 1
    fi
    if ! srv__alive "$_pid"; then
        wait "$_pid" 2>/dev/null
        _st=$?
        rm -f "$SRV_RUN/$_name.pid"
        srv__err "srv_stop $_name: had already exited (status $_st)"
        srv__log_tail "$_name"; return 1
    fi
    _all=$(srv_pids "$_name")
    # SIGTERM: a clean, prompt stop for all five (nginx: fast shutdown, the
    # master waits for its workers; redis: shutdown without saving, save "").
    kill -TERM "$_pid"
    _t0=$(date +%s)
    while :; do
        _left=
        for _p in $_all; do srv__alive "$_p" && _left="$_left $_p"; done
        [ -z "$_left" ] && break
        if [ $(($(date +%s) - _t0)) -ge "$SRV_STOP_TIMEOUT" ]; then
            srv__err "srv_stop $_name: still running after $SRV_STOP_TIMEOUT s (pids$_left); killing"
            for _p in $_left; do kill -KILL "$_p" 2>/dev/null; done
            wait "$_pid" 2>/dev/null
            rm -f "$SRV_RUN/$_name.pid"
            srv__log_tail "$_name"; return 1
        fi
        sleep 0.1
    done
    wait "$_pid" 2>/dev/null
    _st=$?
    rm -f "$SRV_RUN/$_name.pid"
    # All five handle SIGTERM and exit 0; anything else (a crash, an error
    # exit, even death by the TERM itself) is a failure. 127: not our child
    # (srv_start ran in another shell), so the status is unknown.
    case "$_st" in
        0 | 127) return 0 ;;
    esac
    srv__err "srv_stop $_name: exited with status $_st"
    srv__log_tail "$_name"
    return 1
}

# www_make DIR: files of 0, 1, 4096, 65536 and 1048576 bytes; byte i of the
# file of n bytes is (i*131 + n) mod 251, so a client can check a body without
# the file. The sequence repeats every 251 bytes: write one period, double it
# until long enough, cut at n.
www_make() {
    local _dir="$1" _spec _n _f _esc _i _v _len
    [ -n "$_dir" ] || { srv__err "www_make: missing DIR"; return 1; }
    mkdir -p "$_dir" || return 1
    for _spec in $WWW_FILES; do
        _n=${_spec%%:*} _f=$_dir/${_spec#*:}
        _esc='' _i=0
        while [ $_i -lt 251 ]; do
            # the byte as a printf octal escape, by arithmetic: no fork per byte
            _v=$(((_i * 131 + _n) % 251))
            _esc="$_esc\\$((_v / 64))$((_v / 8 % 8))$((_v % 8))"
            _i=$((_i + 1))
        done
        # shellcheck disable=SC2059
        printf "$_esc" >"$_f.tmp" || return 1
        _len=251
        while [ $_len -lt "$_n" ]; do
            cat "$_f.tmp" "$_f.tmp" >"$_f.tmp2" && mv "$_f.tmp2" "$_f.tmp"
            _len=$((_len * 2))
        done
        head -c "$_n" "$_f.tmp" >"$_f" || return 1
        rm -f "$_f.tmp"
    done
    chmod 0755 "$_dir" && chmod 0644 "$_dir"/*.bin
}

# www_check FILE N: the content rule checked from scratch: size N, the first
# 251 bytes one by one, the rest by the period (byte i+251 equals byte i,
# since 251*131 is 0 mod 251). Fast enough for 1 MiB under TCG (no per-byte
# shell or awk work beyond the first period).
www_check() {
    [ -r "$1" ] && [ "$(wc -c <"$1")" -eq "$2" ] || return 1
    head -c 251 "$1" | od -An -v -tu1 | awk -v n="$2" '
        { for (j = 1; j <= NF; j++) { if ($j != (k * 131 + n) % 251) { bad = 1; exit } k++ } }
        END { exit (bad || k != (n < 251 ? n : 251)) }' || return 1
    [ "$2" -le 251 ] || head -c $(($2 - 251)) "$1" | cmp -s - "$1" 0 251
}

# ---------------------------------------------------------------- load tools
esca_consumer_calls() {
    awk '/^consumer/ { for (i = 1; i <= NF; i++) if ($i ~ /^calls=/) { sub(/calls=/, "", $i); s += $i } }
         END { print s + 0 }' /proc/esca/stats
}

load__ms() {  # wrk's "1.23ms", "870.00us", "1.01s" in ms
    awk -v v="$1" 'BEGIN { u = v; sub(/[0-9.]+/, "", u); n = v + 0;
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000;
        printf "%.3f", n }'
}

load_wrk_summary() {
    echo "$(awk '/requests in/ { print $1 }' "$1")" \
        "$(awk '/^Requests\/sec/ { print $2 }' "$1")" \
        "$(load__ms "$(awk '$1 == "50%" { print $2 }' "$1")")" \
        "$(load__ms "$(awk '$1 == "99%" { print $2 }' "$1")")"
}

# "GET","rps","avg","min","p50","p95","p99","max"
load_redis_summary() {
    tr -d '"' <"$1" | awk -F, -v n="$2" '$1 == "GET" { print n, $2, $5, $7; f = 1 } END { exit !f }'
}
