#!/bin/sh
# redis under the shim (module loaded) forks for BGSAVE: the child writes
# the dump through its own ring while the parent keeps serving; the dump
# must load back into a fresh redis (vanilla) with every value intact.
# Boot with tests/vm/run --servers. Prints PASS/FAIL; exit 0 iff PASS.
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/servers/lib.sh
. "$HERE/lib.sh"
unset LD_PRELOAD
OUT=/tmp/t-bgsave
mkdir -p "$OUT" /tmp/redis
rm -f /tmp/redis/esca-redis.rdb
fail() { echo "FAIL redis-bgsave: $*"; exit 1; }
cli() { redis-cli -p 6379 "$@" 2>&1 | tr -d '\r'; }

SRV_ENV="ESCA_STATS=1" srv_start redis --preload || fail "redis did not start under the shim"
# 2000 keys with values of growing size (up to 8 KiB), via a pipe
i=0
while [ $i -lt 2000 ]; do
    printf 'SET k%d %s\r\n' $i "v$i-$(printf '%*s' $((i * 32 % 8192)) '' | tr ' ' x)"
    i=$((i + 1))
done >"$OUT/cmds"
redis-cli -p 6379 --pipe <"$OUT/cmds" >"$OUT/pipe" 2>&1 || fail "redis-cli --pipe: $(tail -n 2 "$OUT/pipe")"
grep -q 'errors: 0, replies: 2000' "$OUT/pipe" || fail "loading the keys: $(tail -n 2 "$OUT/pipe")"
# the parent keeps its rings busy while the child saves
redis-benchmark -q -p 6379 --dbnum 1 -c 4 -n 1000000 -t set,get >"$OUT/load" 2>&1 &
load=$!
t0=$(cli lastsave)
[ "$(cli bgsave)" = "Background saving started" ] || fail "BGSAVE refused"
i=0
while [ "$(cli lastsave)" = "$t0" ] && [ $i -lt 600 ]; do
    sleep 0.1
    i=$((i + 1))
done
kill $load 2>/dev/null
wait $load 2>/dev/null
[ "$(cli lastsave)" != "$t0" ] || fail "BGSAVE did not finish within 60 s"
cli info persistence | grep -q '^rdb_last_bgsave_status:ok' || fail "BGSAVE failed: $(cli info persistence | grep bgsave)"
srv_stop redis || fail "redis did not stop cleanly"
srv_stats redis | grep '^esca-stats ' >"$OUT/stats"
[ -s "$OUT/stats" ] || fail "no esca-stats line from redis"
# the BGSAVE child (its own pid, leaving by _exit) offloaded through its
# own ring: its fdatasync of the dump at least
main=$(sed -n 's/.* pid:\([0-9]*\).*/\1/p; s/^\([0-9]*\):M .*/\1/p' "$SRV_RUN/redis.log" | head -n 1)
child=$(srv_stats redis | grep '^esca-stats-calls ' | grep -v "pid=$main " | grep -E 'fdatasync=[1-9]|fsync=[1-9]' | head -n 1)
[ -n "$child" ] || fail "no stats line from a BGSAVE child with an offloaded fsync (main pid $main): $(srv_stats redis | grep '^esca-stats-calls' | tr '\n' ' ')"
! grep -q -v 'deferred_failed=0' "$OUT/stats" || fail "a deferred call failed: $(cat "$OUT/stats")"
[ -s /tmp/redis/esca-redis.rdb ] || fail "no dump written"
# a fresh, vanilla redis loads the dump: every key back
srv_start redis || fail "vanilla redis did not start on the dump"
n=$(cli dbsize)
[ "$n" = 2000 ] || { srv_stop redis; fail "the dump loaded $n keys into db 0, not 2000"; }
bad=0
for i in 0 1 7 999 1023 1500 1999; do
    want="v$i-$(printf '%*s' $((i * 32 % 8192)) '' | tr ' ' x)"
    [ "$(cli get k$i)" = "$want" ] || bad=$((bad + 1))
done
srv_stop redis
[ $bad = 0 ] || fail "$bad of 7 sampled values differ after loading the dump"
echo "PASS redis-bgsave (2000 keys saved by the shimmed BGSAVE child, under load: ${child#esca-stats-calls }; loaded back by a vanilla redis)"
