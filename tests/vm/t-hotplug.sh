#!/bin/sh
# CPU hotplug (issue 7 item 5, spec "CPU hotplug"), helper t-hotplug-load.
# (a) cores=0,1: a process offloading on both consumers keeps getting exact
#     results through rings while CPU 1 goes offline: its rings move to
#     consumer 0 (stats: cpu=1 state=offline rings=0), a hand-made ring on
#     consumer 1 stays alive and keeps completing, new registrations go to
#     CPU 0; once CPU 1 is back, esca/1 is bound to CPU 1 again and a new
#     ring lands there and runs.
# (b) cores=1: offlining CPU 1 kills its rings with ESCA_DEAD_OFFLINE and the
#     calls go direct, exact, no hang; back online, a new process is
#     offloaded again on consumer 1.
# Skips (77) only if the kernel refuses to offline CPU 1. Reloads
# cores=1 dev_mode=0666 at the end.
fail=0
KO=${ESCA_ROOT:-/esca}/esca.ko
T=${ESCA_ROOT:-/esca}/tests
H=$T/t-hotplug-load
ONLINE=/sys/devices/system/cpu/cpu1/online
LOAD= RAW= EXTRA=

bad() { echo "FAIL: $*"; fail=1; }

cleanup() {
	touch /tmp/hp.stop
	for p in $LOAD $RAW $EXTRA; do
		for i in $(seq 100); do kill -0 $p 2>/dev/null || break; sleep 0.1; done
		kill -9 $p 2>/dev/null
	done
	echo 1 > $ONLINE 2>/dev/null
	rmmod esca 2>/dev/null
	insmod "$KO" cores=1 dev_mode=0666 || { echo "FAIL: reload cores=1"; fail=1; }
	rm -f /tmp/hp.stop
}

reload() {
	rmmod esca 2>/dev/null
	insmod "$KO" "$@" dev_mode=0666 || { echo "FAIL: insmod $*"; exit 1; }
}

consumer() { # cpu key
	sed -n "s/^consumer cpu=$1 .*[ ]$2=\([^ ]*\).*/\1/p" /proc/esca/stats
}

context() { # pid key
	sed -n "s/^context pid=$1 .*[ ]$2=\([^ ]*\).*/\1/p" /proc/esca/stats
}

wait_line() { # file pattern: up to 30 s (TCG)
	for i in $(seq 300); do grep -q "$2" $1 2>/dev/null && return 0; sleep 0.1; done
	return 1
}

allowed_esca1() {
	for d in /proc/[0-9]*; do
		[ "$(cat $d/comm 2>/dev/null)" = esca/1 ] || continue
		sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' $d/status
		return
	done
	echo none
}

# Calls of context $1 rise within 3 s?
rising() { # pid
	rc0=$(context $1 calls)
	sleep 3
	rc1=$(context $1 calls)
	echo "  context $1 calls $rc0 -> $rc1"
	[ -n "$rc0" ] && [ -n "$rc1" ] && [ "$rc1" -gt "$rc0" ]
}

stop_helpers() { # name of the part
	touch /tmp/hp.stop
	for p in $LOAD $RAW $EXTRA; do
		for i in $(seq 300); do kill -0 $p 2>/dev/null || break; sleep 0.1; done
		if kill -0 $p 2>/dev/null; then
			bad "$1: helper $p did not stop within 30 s (hang)"
			kill -9 $p
		fi
		wait $p || bad "$1: helper $p exited $? (wrong results)"
	done
	cat /tmp/hp.load /tmp/hp.raw
	LOAD= RAW= EXTRA=
	rm -f /tmp/hp.stop
}

start_helpers() { # load threads
	rm -f /tmp/hp.stop /tmp/hp.load /tmp/hp.raw
	$H load $1 > /tmp/hp.load 2>&1 &
	LOAD=$!
	$H raw > /tmp/hp.raw 2>&1 &
	RAW=$!
	wait_line /tmp/hp.load '^ready' || bad "load helper not ready: $(cat /tmp/hp.load)"
	wait_line /tmp/hp.raw '^raw cpu' || bad "raw helper not ready: $(cat /tmp/hp.raw)"
}

trap cleanup EXIT
[ -e $ONLINE ] || { echo "skip: $ONLINE does not exist (CPU 1 cannot be offlined)"; trap - EXIT; exit 77; }

# ---- (a) two consumers: rings move to consumer 0 and come back
echo "(a) cores=0,1"
reload cores=0,1
start_helpers 3
# Watch a raw ring on consumer 1: new rings go to the least loaded consumer,
# so a few more raw rings land there; those on 0 just keep running.
raw_cpu=$(sed -n 's/^raw cpu //p' /tmp/hp.raw)
for n in 1 2 3; do
	[ "$raw_cpu" = 1 ] && break
	mv /tmp/hp.raw /tmp/hp.raw$n
	EXTRA="$EXTRA $RAW"
	$H raw > /tmp/hp.raw 2>&1 &
	RAW=$!
	wait_line /tmp/hp.raw '^raw cpu' || bad "raw helper not ready: $(cat /tmp/hp.raw)"
	raw_cpu=$(sed -n 's/^raw cpu //p' /tmp/hp.raw)
done
on1=$(grep -c '^thread .* cpu 1$' /tmp/hp.load)
echo "  load threads on consumer 1: $on1 of 3, raw ring on $raw_cpu"
[ "$on1" -ge 1 ] || bad "no load thread's ring on consumer 1: $(cat /tmp/hp.load)"
[ "$raw_cpu" = 1 ] || bad "raw ring on consumer '$raw_cpu', want 1"
grep '^consumer' /proc/esca/stats
rising $LOAD || bad "offload not running before the hotplug"

if ! err=$( { echo 0 > $ONLINE; } 2>&1 ); then
	echo "skip: echo 0 > $ONLINE refused: $err"
	exit 77
fi
echo "  CPU 1 offline"
sleep 1
grep '^consumer' /proc/esca/stats
[ "$(consumer 1 state)" = offline ] || bad "consumer 1 state '$(consumer 1 state)', want offline"
[ "$(consumer 1 rings)" = 0 ] || bad "consumer 1 still has $(consumer 1 rings) rings"
r0=$(consumer 0 rings)
rl=$(context $LOAD rings)
rr=$(context $RAW rings)
want=$(( ${rl:-0} + ${rr:-0} ))
[ "${r0:-0}" -ge "$want" ] || bad "consumer 0 has $(consumer 0 rings) rings, want the $want of the helpers"
kill -0 $LOAD || bad "load helper died with CPU 1"
c0=$(consumer 0 calls)
rising $LOAD || bad "the load's calls stopped going through rings after the offline"
[ "$(consumer 0 calls)" -gt "${c0:-0}" ] || bad "consumer 0 ran nothing after the offline"
grep -q '^raw dead' /tmp/hp.raw && bad "the raw ring died though consumer 0 could take it: $(cat /tmp/hp.raw)"
# tmpfs calls: the consumer ran them all, none came back bounced
[ "$(context $LOAD bounced)" = 0 ] || bad "the load's calls were bounced: $(context $LOAD bounced)"
for i in 1 2 3; do
	out=$(timeout 20 $H where 2>&1) || bad "where after offline: $out"
	echo "$out" | grep -q '^where cpu=0$' || bad "new registration not on CPU 0: $out"
done

echo 1 > $ONLINE || bad "echo 1 > $ONLINE failed"
echo "  CPU 1 online"
for i in $(seq 50); do [ "$(allowed_esca1)" = 1 ] && break; sleep 0.1; done
[ "$(allowed_esca1)" = 1 ] || bad "esca/1 may run on CPUs '$(allowed_esca1)' after online, want 1"
[ "$(consumer 1 state)" != offline ] || bad "consumer 1 still offline"
grep '^consumer' /proc/esca/stats
c1=$(consumer 1 calls)
got1=0
for i in 1 2 3 4; do
	out=$(timeout 20 $H where 2>&1) || bad "where after online: $out"
	echo "$out" | grep -q '^where cpu=1$' && got1=1 && break
done
[ $got1 = 1 ] || bad "no new ring landed on consumer 1 after it came back (least loaded)"
[ "$(consumer 1 calls)" -gt "${c1:-0}" ] || bad "consumer 1 ran nothing after it came back"
stop_helpers "(a)"
grep -q '^load: .* direct_threads=0$' /tmp/hp.load || bad "(a) a load thread lost its ring: $(tail -1 /tmp/hp.load)"
grep -q '^raw alive' /tmp/hp.raw || bad "(a) raw ring: $(tail -1 /tmp/hp.raw)"

# ---- (b) one consumer: its rings die, calls go direct
echo "(b) cores=1"
reload cores=1
start_helpers 2
rising $LOAD || bad "offload not running before the hotplug"
if ! err=$( { echo 0 > $ONLINE; } 2>&1 ); then
	bad "(b) echo 0 > $ONLINE refused: $err"
else
	echo "  CPU 1 offline"
	wait_line /tmp/hp.raw '^raw dead' || bad "(b) raw ring still alive 30 s after its only consumer went offline"
	grep -q '^raw dead reason=7 ' /tmp/hp.raw || bad "(b) raw ring: $(tail -1 /tmp/hp.raw), want reason=7 (ESCA_DEAD_OFFLINE)"
	grep '^consumer' /proc/esca/stats
	[ "$(consumer 1 state)" = offline ] || bad "(b) consumer 1 state '$(consumer 1 state)', want offline"
	sleep 2
	kill -0 $LOAD || bad "(b) load helper died"
	# the load must still make progress, directly: stop it, it must end
	touch /tmp/hp.stop
	for i in $(seq 300); do kill -0 $LOAD 2>/dev/null || break; sleep 0.1; done
	kill -0 $LOAD 2>/dev/null && bad "(b) load helper hangs with its consumer offline"
	stop_helpers "(b)"
	grep -q '^load: .* direct_threads=2$' /tmp/hp.load || bad "(b) load threads did not all go direct: $(tail -1 /tmp/hp.load)"
	# (REGISTER with no consumer online is not specified: only shown)
	echo "  a new process with no consumer online: $(timeout 20 $H where 2>&1 | tr '\n' ' ')"
	echo 1 > $ONLINE || bad "echo 1 > $ONLINE failed"
	echo "  CPU 1 online"
	for i in $(seq 50); do [ "$(allowed_esca1)" = 1 ] && break; sleep 0.1; done
	[ "$(allowed_esca1)" = 1 ] || bad "(b) esca/1 may run on CPUs '$(allowed_esca1)' after online, want 1"
	out=$(timeout 20 $H where 2>&1) || bad "(b) where after online: $out"
	echo "$out"
	echo "$out" | grep -q '^where cpu=1$' || bad "(b) new process not offloaded on consumer 1 after online"
fi
trap - EXIT
cleanup
exit $fail
