#!/bin/sh
# esca-run as a user runs it: CMD starts under the shim, pinned by numactl
# to CPUs that are not the module's consumers, says where it went, and its
# writes go through the ring (the shim's ESCA_STATS line); its exit status
# comes back; a missing command is 127 with one line.
E=${ESCA_ROOT:-/esca}
fail=0
consumers=$(sed -n 's/^consumer cpu=\([0-9]*\) .*/\1/p' /proc/esca/stats | tr '\n' ',' | sed 's/,$//')
# a dynamic program (busybox is static: no preload reaches it)
out=$($E/bin/esca-run --stats -- $E/shimtests/t-write-close 2>&1)
rc=$?
echo "$out" | grep -v '^PASS' | sed 's/^/  /'
[ $rc -eq 0 ] || { echo "FAIL: exit $rc"; fail=1; }
echo "$out" | grep -q "^esca-run: $E/shimtests/t-write-close on CPUs .* (numactl); consumers on CPUs $consumers;" ||
	{ echo "FAIL: no line saying where t-write-close runs next to consumers $consumers"; fail=1; }
allowed=$($E/bin/esca-run --quiet -- sh -c 'sed -n "s/^Cpus_allowed_list:[[:space:]]*//p" /proc/self/status')
echo "  pinned: Cpus_allowed_list $allowed"
for c in $(echo "$consumers" | tr ',' ' '); do
	numactl --physcpubind="$allowed" --show | sed -n 's/^physcpubind: *//p' | tr ' ' '\n' | grep -qx "$c" &&
		{ echo "FAIL: the command may run on consumer CPU $c (allowed: $allowed)"; fail=1; }
done
sync=$(echo "$out" | sed -n 's/^esca-stats pid=[0-9]* sync=\([0-9]*\) .*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
[ "$sync" -gt 0 ] || { echo "FAIL: no call went through the ring"; fail=1; }
$E/bin/esca-run --quiet sh -c 'exit 7' 2>/dev/null
[ $? -eq 7 ] || { echo "FAIL: the command's exit status was not returned"; fail=1; }
err=$($E/bin/esca-run no-such-command 2>&1)
rc=$?
[ $rc -eq 127 ] && [ "$(echo "$err" | wc -l)" = 1 ] ||
	{ echo "FAIL: missing command: exit $rc, '$err'"; fail=1; }
exit $fail
