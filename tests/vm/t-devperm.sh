#!/bin/sh
# /dev/esca's owner, group and mode come from the module parameters
# dev_uid, dev_gid, dev_mode (default root:root 0660): with the defaults
# uid 1000 cannot open it; with dev_uid=1000 dev_gid=1000 dev_mode=0600 it
# can and uid 1001 cannot; a bad dev_mode is refused at insmod (EINVAL).
# Reloads the module with cores=1 dev_mode=0666 at the end (the suite's).
E=${ESCA_ROOT:-/esca}
T=$E/tests
fail=0
bad() { echo "FAIL: $*"; fail=1; }

# rmmod, then insmod with $@; prints insmod's output, returns its status.
reload() {
	rmmod esca 2>/dev/null
	insmod $E/esca.ko "$@" 2>&1
}

# "mode uid gid" of /dev/esca once devtmpfs shows it.
node() {
	for i in $(seq 20); do [ -c /dev/esca ] && break; sleep 0.1; done
	stat -c '%a %u %g' /dev/esca 2>&1
}

# Expect $T/t-attack-mem --open-as UID to exit $2 (0 opened, 2 EACCES).
open_as() {
	out=$($T/t-attack-mem --open-as $1 2>&1)
	rc=$?
	echo "  $out (exit $rc)"
	[ $rc -eq $2 ] || bad "$3"
}

echo "defaults (cores=1):"
out=$(reload cores=1) || bad "insmod cores=1: $out"
got=$(node)
echo "  /dev/esca: $got"
[ "$got" = "660 0 0" ] || bad "default /dev/esca is '$got', want '660 0 0'"
open_as 1000 2 "uid 1000 opens the default /dev/esca (want EACCES)"
open_as 0 0 "root cannot open the default /dev/esca"

echo "dev_uid=1000 dev_gid=1000 dev_mode=0600:"
out=$(reload cores=1 dev_uid=1000 dev_gid=1000 dev_mode=0600) ||
	bad "insmod dev_uid=1000 dev_gid=1000 dev_mode=0600: $out"
got=$(node)
echo "  /dev/esca: $got"
[ "$got" = "600 1000 1000" ] || bad "/dev/esca is '$got', want '600 1000 1000'"
open_as 1000 0 "uid 1000 cannot open its own /dev/esca"
open_as 1001 2 "uid 1001 opens a 0600 /dev/esca of uid 1000 (want EACCES)"
out=$($T/t-attack-mem --register-as 1000 8 2>&1) ||
	bad "uid 1000 cannot register through its /dev/esca: $out"

for m in 01777 04666 0888; do
	out=$(reload cores=1 dev_mode=$m)
	rc=$?
	echo "insmod dev_mode=$m: exit $rc: $out"
	if [ $rc -eq 0 ]; then
		bad "insmod dev_mode=$m accepted (/dev/esca: $(node))"
	else
		echo "$out" | grep -qi "invalid argument\|invalid param" ||
			bad "insmod dev_mode=$m refused, but not with EINVAL: $out"
	fi
	[ ! -e /dev/esca ] || bad "/dev/esca exists after insmod dev_mode=$m"
done

rmmod esca 2>/dev/null
out=$(insmod $E/esca.ko cores=1 dev_mode=0666 2>&1) || {
	bad "reload cores=1 dev_mode=0666: $out"
	insmod $E/esca.ko cores=1
}
exit $fail
