#!/bin/sh
# The guest suite: runs every test, checks the kernel log after each one,
# and ends with "guest: N passed, N failed". Runs inside the guest with
# esca.ko loaded (cores=1); exit status 0 iff all passed.
T=${ESCA_ROOT:-/esca}/tests
TIMEOUT=${ESCA_TEST_TIMEOUT:-600}
BAD='WARNING|BUG:|Oops|soft lockup|rcu.*stall|detected stall|Call Trace|general protection|kernel panic|hung_task|blocked for more than'
pass=0
failed=0
failed_names=""

kernel_log_clean() { # marker
	dmesg | sed -n "/esca-test-start $1\$/,\$p" > /tmp/klog.$1
	if grep -Eq "$BAD" /tmp/klog.$1; then
		echo "  kernel log after $1 shows a problem:"
		grep -E -B2 -A20 "$BAD" /tmp/klog.$1 | head -60 | sed 's/^/  | /'
		return 1
	fi
	return 0
}

run() { # name cmd...
	name=$1
	shift
	echo "esca-test-start $name" > /dev/kmsg
	start=$(cut -d' ' -f1 /proc/uptime)
	timeout $TIMEOUT "$@" > /tmp/out.$name 2>&1
	rc=$?
	end=$(cut -d' ' -f1 /proc/uptime)
	secs=$(awk "BEGIN{printf \"%.1f\", $end - $start}")
	klog=0
	kernel_log_clean $name || klog=1
	if [ $rc -eq 77 ]; then
		echo "skip $name (${secs}s)"
		sed 's/^/  /' /tmp/out.$name
	elif [ $rc -eq 0 ] && [ $klog -eq 0 ]; then
		pass=$((pass + 1))
		echo "ok   $name (${secs}s)"
		sed -n 's/^/  /p' /tmp/out.$name | grep -v '^  #' | head -20
	else
		failed=$((failed + 1))
		failed_names="$failed_names $name"
		[ $rc -eq 143 ] && echo "  (killed after ${TIMEOUT}s)"
		echo "FAIL $name (exit $rc, ${secs}s)"
		sed 's/^/  /' /tmp/out.$name | head -80
	fi
}

final_checks() {
	for i in $(seq 100); do
		grep -q "live_contexts=0" /proc/esca/stats && break
		sleep 0.1
	done
	ok=0
	grep -q "live_contexts=0" /proc/esca/stats || { echo "live contexts left: $(head -1 /proc/esca/stats)"; ok=1; }
	cat /proc/esca/stats
	rmmod esca || { echo "rmmod esca failed at the end"; ok=1; }
	return $ok
}

echo "guest kernel $(uname -r), $(grep -c ^processor /proc/cpuinfo) CPUs"
echo "memory debugging: $(tr ' ' '\n' < /proc/cmdline | grep -E '^(slub_debug|page_poison|kfence)' | tr '\n' ' ')"
run kthreads sh $T/t-kthreads.sh
run badcores sh $T/t-badcores.sh
run abi $T/t-abi
run calls $T/t-calls
run notrap $T/t-notrap
run identity $T/t-identity
run threads $T/t-threads
run threads-2consumers sh $T/t-2consumers.sh
run churn $T/t-churn
run lifecycle $T/t-lifecycle
run files-put-exit sh $T/t-putexit.sh
run rmmod sh $T/t-rmmod.sh
echo "esca-test-start final" > /dev/kmsg
if final_checks > /tmp/out.final 2>&1 && kernel_log_clean final; then
	pass=$((pass + 1))
	echo "ok   final (contexts 0, rmmod)"
else
	failed=$((failed + 1))
	failed_names="$failed_names final"
	echo "FAIL final"
	sed 's/^/  /' /tmp/out.final
fi
echo "--- whole kernel log checked: $(dmesg | grep -Ec "$BAD") problem lines"
[ -n "$failed_names" ] && echo "failed:$failed_names"
echo "guest: $pass passed, $failed failed"
[ $failed -eq 0 ]
