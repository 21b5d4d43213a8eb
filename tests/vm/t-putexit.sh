#!/bin/sh
# The file-table release path used when IBT seals put_files_struct (a
# short-lived thread adopts the table and exits), forced with
# files_put_exit=1: the lifecycle, churn and call tests pass, every context
# goes away (its /dev/esca file is only released once the table is), and
# rmmod succeeds. Reloads cores=1 dev_mode=0666.
fail=0
KO=${ESCA_ROOT:-/esca}/esca.ko
T=${ESCA_ROOT:-/esca}/tests
rmmod esca
insmod "$KO" cores=1 dev_mode=0666 files_put_exit=1 || exit 1
dmesg | grep -q "file tables released by exiting threads (files_put_exit=1)" ||
	{ echo "FAIL: the module did not switch to exiting threads"; fail=1; }
for t in t-calls t-churn t-lifecycle; do
	$T/$t > /tmp/putexit.$t 2>&1 || { echo "FAIL: $t"; cat /tmp/putexit.$t; fail=1; }
done
for i in $(seq 100); do grep -q live_contexts=0 /proc/esca/stats && break; sleep 0.1; done
grep -q live_contexts=0 /proc/esca/stats || { echo "FAIL: $(head -1 /proc/esca/stats)"; fail=1; }
echo "released through exiting threads: $(head -1 /proc/esca/stats)"
rmmod esca || { echo "FAIL: rmmod"; fail=1; }
insmod "$KO" cores=1 dev_mode=0666 || fail=1
exit $fail
