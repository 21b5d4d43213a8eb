#!/bin/sh
# esca-affinity's choice used the way a user uses it: its cores= value fed
# to insmod puts the consumers on exactly the CPUs it named; the server's
# CPU list shares none of them; calls made pinned there (t-calls under
# numactl) are offloaded and exact. Reloads the suite's insmod arguments.
E=${ESCA_ROOT:-/esca}
fail=0
json=$($E/bin/esca-affinity --json) || { echo "FAIL: esca-affinity --json exited $?"; exit 1; }
$E/bin/esca-affinity | sed 's/^/  /'
cores=$($E/bin/esca-affinity --cores-only) || { echo "FAIL: --cores-only"; exit 1; }
want=$(echo "$json" | sed -n 's/.*"consumers":\[\([0-9,]*\)\].*/\1/p')
server=$(echo "$json" | sed -n 's/.*"server":"\([0-9,-]*\)".*/\1/p')
[ -n "$want" ] && [ -n "$server" ] || { echo "FAIL: no consumers or server in: $json"; exit 1; }
rmmod esca || exit 1
if ! out=$(insmod $E/esca.ko cores="$cores" dev_mode=0666 2>&1); then
	echo "FAIL: insmod cores=$cores: $out"
	fail=1
else
	got=$(sed -n 's/^consumer cpu=\([0-9]*\) .*/\1/p' /proc/esca/stats | sort -n | tr '\n' ',' | sed 's/,$//')
	echo "insmod cores=$cores: consumers on CPUs $got; server CPUs $server"
	[ "$got" = "$want" ] || { echo "FAIL: consumers on $got, esca-affinity chose $want"; fail=1; }
	srvcpus=$(numactl --physcpubind="$server" --show | sed -n 's/^physcpubind: *//p')
	[ -n "$srvcpus" ] || { echo "FAIL: numactl cannot bind to $server"; fail=1; }
	for c in $(echo "$want" | tr ',' ' '); do
		case " $srvcpus " in *" $c "*)
			echo "FAIL: consumer CPU $c is also a server CPU ($srvcpus)"
			fail=1 ;;
		esac
	done
	numactl --physcpubind="$server" $E/tests/t-calls >/tmp/affinity.calls 2>&1 ||
		{ echo "FAIL: t-calls pinned to $server"; sed 's/^/  /' /tmp/affinity.calls | head -20; fail=1; }
	calls=$(sed -n 's/^consumer .* calls=\([0-9]*\) .*/\1/p' /proc/esca/stats | awk '{ s += $1 } END { print s + 0 }')
	echo "t-calls pinned to CPUs $server: consumers ran $calls calls"
	[ "$calls" -gt 0 ] || { echo "FAIL: nothing was offloaded"; fail=1; }
	rmmod esca || { echo "FAIL: rmmod"; fail=1; }
fi
eval insmod $E/esca.ko "$(cat /vm/insmod-args 2>/dev/null || echo cores=1 dev_mode=0666)" || fail=1
exit $fail
