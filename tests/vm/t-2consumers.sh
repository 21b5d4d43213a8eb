#!/bin/sh
# Two consumers (cores=0,1): the rings of t-threads' 8 threads (and main's)
# are spread over both, least loaded first, and every result and the order
# of each thread's calls still hold. Reloads cores=1 dev_mode=0666 at the end.
fail=0
KO=${ESCA_ROOT:-/esca}/esca.ko
T=${ESCA_ROOT:-/esca}/tests
rmmod esca
insmod "$KO" cores=0,1 dev_mode=0666 || exit 1
$T/t-threads || fail=1
for cpu in 0 1; do
	calls=$(sed -n "s/^consumer cpu=$cpu .* calls=\([0-9]*\) .*/\1/p" /proc/esca/stats)
	echo "consumer on CPU $cpu ran ${calls:-no} calls"
	[ "${calls:-0}" -ge 30000 ] || { echo "FAIL: consumer $cpu got too little of the load"; fail=1; }
done
rmmod esca || fail=1
insmod "$KO" cores=1 dev_mode=0666 || fail=1
exit $fail
