#!/bin/sh
# insmod with a bad cores= (empty, garbage, out of range, duplicate,
# backwards, offline) fails with EINVAL and one log line naming the value.
# Leaves the module loaded with cores=1 dev_mode=0666 (as tests/vm/run does).
fail=0
KO=${ESCA_ROOT:-/esca}/esca.ko
T=${ESCA_ROOT:-/esca}/tests

expect_refused() { # value expected-log-fragment
	val=$1
	frag=$2
	rmmod esca 2>/dev/null
	echo "esca-test: insmod cores=$val" > /dev/kmsg
	if out=$($T/t-insmod "$KO" "cores=$val" 2>&1); then
		echo "FAIL: cores='$val' was accepted"
		fail=1
		return
	fi
	case "$out" in
	*"Invalid argument"*) ;;
	*) echo "FAIL: cores='$val': insmod said '$out', want EINVAL"; fail=1 ;;
	esac
	lines=$(dmesg | sed -n "/esca-test: insmod cores=$val\$/,\$p" | grep "esca: ")
	n=$(echo "$lines" | grep -c .)
	line=$(echo "$lines" | tail -1)
	[ "$n" -eq 1 ] || { echo "FAIL: cores='$val': $n log lines, want 1"; fail=1; }
	case "$line" in
	*"cores='$val'"*"$frag"*) echo "refused cores='$val': ${line#*] }" ;;
	*) echo "FAIL: cores='$val': log line '$line', want one naming '$val' and '$frag'"; fail=1 ;;
	esac
}

expect_refused "" "empty CPU list"
expect_refused "abc" "'abc' is not a CPU number"
expect_refused "7" "CPU 7 out of range"
expect_refused "1,1" "CPU 1 listed twice"
expect_refused "0-1,1" "CPU 1 listed twice"
expect_refused "1-0" "backwards"
expect_refused "0,,1" "empty entry"
expect_refused "1-" "'' is not a CPU number"
expect_refused "-1" "'' is not a CPU number"

if [ -w /sys/devices/system/cpu/cpu1/online ]; then
	echo 0 > /sys/devices/system/cpu/cpu1/online
	expect_refused "1" "CPU 1 is offline"
	echo 1 > /sys/devices/system/cpu/cpu1/online
else
	echo "note: CPU 1 cannot be taken offline here; offline case not run"
fi

rmmod esca 2>/dev/null
if out=$($T/t-insmod "$KO" idle_us=99999999 2>&1); then
	echo "FAIL: idle_us=99999999 accepted"
	fail=1
	rmmod esca
else
	echo "refused idle_us=99999999: $(dmesg | grep 'esca: idle_us' | tail -1 | sed 's/^\[[^]]*\] //')"
fi
insmod "$KO" cores=1 dev_mode=0666 || { echo "FAIL: cannot reload cores=1"; fail=1; }
exit $fail
