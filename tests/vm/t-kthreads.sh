#!/bin/sh
# Consumer threads exist, are named esca/N, and are bound to exactly core N,
# for every cores= form; the default (no cores=) is the last online CPU.
# Leaves the module loaded with cores=1 dev_mode=0666 (as tests/vm/run does).
fail=0
KO=${ESCA_ROOT:-/esca}/esca.ko

check_threads() { # expected cpus...
	want="$*"
	got=""
	for d in /proc/[0-9]*; do
		c=$(cat $d/comm 2>/dev/null) || continue
		case "$c" in esca/*) ;; *) continue ;; esac
		n=${c#esca/}
		allowed=$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' $d/status)
		if [ "$allowed" != "$n" ]; then
			echo "FAIL: $c (pid ${d#/proc/}) may run on CPUs '$allowed', want '$n'"
			fail=1
		fi
		got="$got $n"
	done
	got=$(echo $got | tr ' ' '\n' | sort -n | tr '\n' ' ' | sed 's/ $//')
	if [ "$got" != "$want" ]; then
		echo "FAIL: consumer threads on CPUs '$got', want '$want'"
		fail=1
	else
		echo "consumers on CPUs: $got"
	fi
}

reload() { # args (dev_mode=0666 always: uid-1000 tests open /dev/esca)
	rmmod esca 2>/dev/null
	if ! insmod "$KO" dev_mode=0666 "$@"; then
		echo "FAIL: insmod $* refused"
		fail=1
	fi
}

check_threads 1
reload cores=0,1
check_threads 0 1
reload cores=0-1
check_threads 0 1
reload
last=$(( $(grep -c ^processor /proc/cpuinfo) - 1 ))
check_threads $last
grep -q "consumers=1 " /proc/esca/stats || { echo "FAIL: stats: $(head -1 /proc/esca/stats)"; fail=1; }
reload cores=1
check_threads 1
exit $fail
