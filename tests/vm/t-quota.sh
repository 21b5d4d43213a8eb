#!/bin/sh
# The per-uid ring memory cap (user_ring_kb): reload the module with a
# 2 MiB cap, then t-attack-mem --quota fills it from uid-1000 processes
# (REGISTER fails EDQUOT near the cap, root and uid 1001 still register,
# the memory comes back when the processes exit); the kernel log names
# user_ring_kb, rate-limited; a uid registering and unregistering one ring
# at a time is never refused. Reloads cores=1 dev_mode=0666 at the end.
E=${ESCA_ROOT:-/esca}
fail=0
rmmod esca
if ! out=$(insmod $E/esca.ko cores=1 dev_mode=0666 user_ring_kb=2048 2>&1); then
	echo "FAIL: insmod user_ring_kb=2048: $out"
	insmod $E/esca.ko cores=1 dev_mode=0666 || insmod $E/esca.ko cores=1
	exit 1
fi
echo "user_ring_kb=$(cat /sys/module/esca/parameters/user_ring_kb 2>&1)"
echo "esca-quota-start $$" > /dev/kmsg
$E/tests/t-attack-mem --quota || fail=1
lines=$(dmesg | sed -n "/esca-quota-start $$\$/,\$p" | grep user_ring_kb)
n=$(printf '%s' "$lines" | grep -c user_ring_kb)
echo "kernel log lines naming user_ring_kb: $n"
printf '%s\n' "$lines" | head -5
[ "$n" -ge 1 ] || { echo "FAIL: no kernel log line names user_ring_kb"; fail=1; }
# About 200 refusals in a burst: the line must be rate-limited.
[ "$n" -le 20 ] || { echo "FAIL: $n lines for ~200 refusals: not rate-limited"; fail=1; }
# One ring at a time, 200 times: an unregistered ring stops counting.
$E/tests/t-attack-mem --churn-as 1000 200 || fail=1
rmmod esca
if ! out=$(insmod $E/esca.ko cores=1 dev_mode=0666 2>&1); then
	echo "FAIL: reload cores=1 dev_mode=0666: $out"
	insmod $E/esca.ko cores=1
	fail=1
fi
exit $fail
