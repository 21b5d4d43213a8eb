#!/bin/sh
# rmmod while a registered process is busy fails (the module is pinned by
# its open /dev/esca); after the process is killed with SIGKILL, the
# live-context counter drops to 0 and rmmod succeeds. Reloads cores=1 dev_mode=0666.
fail=0
T=${ESCA_ROOT:-/esca}/tests
$T/t-lifecycle --hold 60 > /tmp/hold.out &
pid=$!
for i in $(seq 50); do grep -q holding /tmp/hold.out 2>/dev/null && break; sleep 0.1; done
if out=$(rmmod esca 2>&1); then
	echo "FAIL: rmmod succeeded while pid $pid was registered"
	fail=1
else
	echo "rmmod while in use refused: $out"
fi
kill -9 $pid
wait $pid 2>/dev/null
for i in $(seq 100); do
	grep -q "live_contexts=0" /proc/esca/stats && break
	sleep 0.1
done
grep -q "live_contexts=0" /proc/esca/stats || { echo "FAIL: $(head -1 /proc/esca/stats)"; fail=1; }
if rmmod esca; then echo "rmmod after kill -9: ok"; else echo "FAIL: rmmod after the process died"; fail=1; fi
insmod ${ESCA_ROOT:-/esca}/esca.ko cores=1 dev_mode=0666 || fail=1
exit $fail
