#!/bin/bash
# Kernel helper for ESCA.
#   scripts/kernel.sh kver  6.1|6.12   -> kernel release, e.g. 6.1.0-56-amd64
#   scripts/kernel.sh kdir  6.1|6.12   -> KDIR for `make -C $KDIR M=... modules`
#   scripts/kernel.sh image 6.1|6.12   -> path of the matching vmlinuz
# Downloads (6.12 headers, kernel images) are cached under
# <repo>/.cache/kernels/ and reused. Never installs kernel images on the host.
set -euo pipefail

die() { echo "kernel.sh: error: $*" >&2; exit 1; }
usage() { echo "usage: $0 kver|kdir|image 6.1|6.12" >&2; exit 2; }

[ $# -eq 2 ] || usage
cmd=$1 series=$2

ROOT=$(git -C "$(dirname "$(readlink -f "$0")")" rev-parse --show-toplevel 2>/dev/null) \
    || ROOT=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
CACHE="$ROOT/.cache/kernels"

ensure_gitignore() {
    local gi="$ROOT/.gitignore" l
    for l in .cache/ build/; do
        if [ ! -f "$gi" ] || ! grep -qxF "$l" "$gi"; then
            # keep a trailing newline discipline
            if [ -s "$gi" ] && [ -n "$(tail -c1 "$gi")" ]; then echo >> "$gi"; fi
            echo "$l" >> "$gi"
        fi
    done
}

installed_ver() {  # pkg -> version if installed
    local s
    s=$(dpkg-query -W -f='${Status}|${Version}' "$1" 2>/dev/null) || return 1
    [ "${s%%|*}" = "install ok installed" ] || return 1
    echo "${s#*|}"
}

kver_61() {
    local dep
    dep=$(dpkg-query -W -f='${Depends}' linux-headers-amd64 2>/dev/null) \
        || die "linux-headers-amd64 is not installed (run scripts/deps.sh)"
    dep=$(echo "$dep" | tr ',|' '\n\n' | sed -n 's/^ *linux-headers-\(6\.1\.[^ ]*-amd64\).*/\1/p' | head -n1)
    [ -n "$dep" ] || die "cannot derive 6.1 kernel release from linux-headers-amd64's Depends"
    echo "$dep"
}

ver_612() {  # newest 6.12.N+deb12 with both -common headers and kbuild installed
    local v best=
    for v in $(dpkg-query -W -f='${Package}\n' 'linux-headers-6.12.*-common' 2>/dev/null \
                | sed -n 's/^linux-headers-\(6\.12\.[0-9]*+deb12\)-common$/\1/p' | sort -V); do
        installed_ver "linux-headers-$v-common" >/dev/null && installed_ver "linux-kbuild-$v" >/dev/null && best=$v
    done
    [ -n "$best" ] || die "no linux-headers-6.12.N+deb12-common + linux-kbuild-6.12.N+deb12 installed (run scripts/deps.sh)"
    echo "$best"
}

kver() {
    case "$series" in
        6.1)  kver_61 ;;
        6.12) echo "$(ver_612)-amd64" ;;
        *)    usage ;;
    esac
}

# download PKG [VERSION] into DIR (as exactly one .deb); prints the .deb path
download() {
    local pkg=$1 ver=${2:-} dir=$3 spec deb
    spec=$pkg
    if [ -n "$ver" ] && apt-cache show "$pkg=$ver" >/dev/null 2>&1; then spec="$pkg=$ver"; fi
    # Stale package lists (a new machine) name versions the archive no
    # longer has: refresh them once and try again.
    if ! apt-cache show "$pkg" >/dev/null 2>&1 ||
       ! ( cd "$dir" && apt-get download -q "$spec" >/dev/null 2>"$dir/apt.err" ); then
        echo "kernel.sh: $pkg not downloadable; running apt-get update" >&2
        apt-get update -qq >/dev/null 2>&1 || die "apt-get update failed"
        apt-cache show "$pkg" >/dev/null 2>&1 || die "package $pkg not found in apt"
        spec=$pkg
        if [ -n "$ver" ] && apt-cache show "$pkg=$ver" >/dev/null 2>&1; then spec="$pkg=$ver"; fi
        ( cd "$dir" && apt-get download -q "$spec" >/dev/null 2>"$dir/apt.err" ) \
            || die "apt-get download $spec failed: $(tail -n1 "$dir/apt.err")"
    fi
    deb=$(ls "$dir"/"${pkg}"_*.deb 2>/dev/null | head -n1)
    [ -n "$deb" ] || die "apt-get download $spec produced no .deb"
    echo "$deb"
}

# fetch_extract NAME PKG VERSION -> populate $CACHE/NAME (atomic, locked)
fetch_extract() {
    local name=$1 pkg=$2 ver=$3 dest="$CACHE/$1" tmp deb
    [ -f "$dest/.done" ] && return 0
    mkdir -p "$CACHE"
    ensure_gitignore
    exec 9>"$CACHE/.lock-$name"
    flock 9
    if [ ! -f "$dest/.done" ]; then
        echo "kernel.sh: downloading $pkg ..." >&2
        tmp=$(mktemp -d "$CACHE/.tmp-$name.XXXXXX")
        deb=$(download "$pkg" "$ver" "$tmp")
        mkdir "$tmp/x"
        dpkg -x "$deb" "$tmp/x" || die "dpkg -x $deb failed"
        rm -f "$deb"
        rm -f "$tmp/apt.err"
        rm -rf "$dest"
        mv "$tmp/x" "$dest"
        rmdir "$tmp"
        touch "$dest/.done"
    fi
    flock -u 9
    exec 9>&-
}

kdir() {
    local k
    k=$(kver)
    case "$series" in
        6.1)
            local d="/usr/src/linux-headers-$k"
            [ -f "$d/Makefile" ] || die "$d missing (run scripts/deps.sh)"
            echo "$d" ;;
        6.12)
            local v=${k%-amd64} cv d
            cv=$(installed_ver "linux-headers-$v-common")
            [ -f "/usr/src/linux-headers-$v-common/Makefile" ] || die "linux-headers-$v-common missing (run scripts/deps.sh)"
            [ -d "/usr/lib/linux-kbuild-$v/scripts" ] || die "linux-kbuild-$v missing (run scripts/deps.sh)"
            fetch_extract "headers-$k" "linux-headers-$k" "$cv"
            d="$CACHE/headers-$k/usr/src/linux-headers-$k"
            [ -f "$d/Makefile" ] || die "extracted headers lack $d/Makefile"
            # Relative symlinks point into ../../lib/linux-kbuild-$v: re-point absolute.
            local l
            for l in scripts tools; do
                if [ "$(readlink "$d/$l" 2>/dev/null)" != "/usr/lib/linux-kbuild-$v/$l" ]; then
                    ln -sfn "/usr/lib/linux-kbuild-$v/$l" "$d/$l"
                fi
            done
            echo "$d" ;;
    esac
}

image() {
    local k hv
    k=$(kver)
    case "$series" in
        6.1)  hv=$(installed_ver "linux-headers-$k" || true) ;;
        6.12) hv=$(installed_ver "linux-headers-${k%-amd64}-common" || true) ;;
    esac
    fetch_extract "image-$k" "linux-image-$k-unsigned" "$hv"
    local f="$CACHE/image-$k/boot/vmlinuz-$k"
    [ -f "$f" ] || die "vmlinuz-$k not found in linux-image-$k-unsigned"
    echo "$f"
}

case "$cmd" in
    kver)  kver ;;
    kdir)  kdir ;;
    image) image ;;
    *)     usage ;;
esac
