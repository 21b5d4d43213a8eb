#!/bin/bash
# Install every Debian package ESCA needs (idempotent; fast when all present).
# Never installs linux-image-* or linux-headers-6.12*-amd64 (those pull a
# kernel image into the host's /boot).
set -euo pipefail

BASE_PKGS=(gcc make git qemu-system-x86 busybox-static cpio kmod gzip file
           linux-headers-amd64 pahole
           liburcu-dev libhwloc-dev hwloc numactl wrk clang-format
           liburing-dev   # esca-micro links liburing.a
           gnuplot-nox)   # make bench's plots (PNG and SVG)
# Real servers and their load tools (tests/servers, bench/servers; copied into
# the guest by tests/vm/run --servers). Their services must not start on the host.
SERVER_PKGS=(nginx lighttpd redis-server redis-tools memcached h2o
             libmemcached-tools wrk numactl)

log() { echo "deps: $*"; }
die() { echo "deps: error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || SUDO=sudo
SUDO=${SUDO:-}

installed() {  # pkg -> 0 if installed
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

newest_612() {  # prints e.g. 6.12.117+deb12, or nothing
    apt-cache search --names-only '^linux-headers-6\.12\.[0-9]+\+deb12-amd64$' 2>/dev/null \
        | awk '{print $1}' | sed -e 's/^linux-headers-//' -e 's/-amd64$//' | sort -V | tail -n1
}

log "checking base packages"
missing=()
for p in "${BASE_PKGS[@]}" "${SERVER_PKGS[@]}"; do
    installed "$p" || case " ${missing[*]} " in *" $p "*) ;; *) missing+=("$p") ;; esac
done

log "finding newest 6.12 kernel version"
V=$(newest_612)
updated=0
if [ -z "$V" ]; then
    log "no 6.12 headers in apt cache; running apt-get update"
    $SUDO apt-get update -qq || die "apt-get update failed"
    updated=1
    V=$(newest_612)
    [ -n "$V" ] || die "no package matching linux-headers-6.12.N+deb12-amd64 found in apt"
fi
log "6.12 version: $V"
for p in "linux-headers-$V-common" "linux-kbuild-$V"; do installed "$p" || missing+=("$p"); done

if [ ${#missing[@]} -eq 0 ]; then
    log "all packages present"
    exit 0
fi

for p in "${missing[@]}"; do
    case "$p" in
        linux-image-*|linux-headers-6.12*-amd64) die "refusing to install $p";;
    esac
done

if [ $updated = 0 ]; then
    log "missing: ${missing[*]}; running apt-get update"
    $SUDO apt-get update -qq || die "apt-get update failed"
fi
# Keep maintainer scripts from starting services (nginx, redis, memcached...)
# on the host: invoke-rc.d asks policy-rc.d, and 101 means "action forbidden".
# An existing policy-rc.d is put back afterwards, byte for byte.
POLICY=/usr/sbin/policy-rc.d
POLICY_SAVED=
restore_policy() {
    if [ -n "$POLICY_SAVED" ]; then $SUDO cp -p "$POLICY_SAVED" "$POLICY"; $SUDO rm -f "$POLICY_SAVED"
    else $SUDO rm -f "$POLICY"; fi
}
if [ -e "$POLICY" ]; then
    POLICY_SAVED=$(mktemp /tmp/esca-policy-rc.d.XXXXXX)
    $SUDO cp -p "$POLICY" "$POLICY_SAVED"
fi
trap restore_policy EXIT
printf '#!/bin/sh\n# written by ESCA scripts/deps.sh during apt-get install\nexit 101\n' \
    | $SUDO tee "$POLICY" >/dev/null
$SUDO chmod 0755 "$POLICY"

log "installing: ${missing[*]}"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" \
    || die "apt-get install failed"
restore_policy; trap - EXIT
# Sanity: the install must not have brought a kernel image along.
if dpkg-query -W -f='${Package} ${Status}\n' 'linux-image-*' 2>/dev/null | grep -q ' installed$'; then
    echo "deps: WARNING: a linux-image-* package is installed on the host" >&2
fi
log "done"
