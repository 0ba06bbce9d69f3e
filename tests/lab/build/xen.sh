#!/bin/bash
# tests/lab/build/xen.sh -- build stage "xen": the pinned Xen hypervisor
# and the livepatch test payloads built against it.
#
# Fetches Debian's xen source package and the matching
# xen-hypervisor-4.17-amd64 .deb (for Debian's .config), applies
# LAB_XEN_CONFIG_DELTA (shadow paging for PV live migration, livepatch),
# builds the hypervisor, then `make -C xen tests`, whose
# test/livepatch/*.livepatch payloads carry the build-id of this exact
# xen-syms.  Run by `lab build` (lib/build.sh) with:
#   OUT           empty directory receiving the results
#   WORK          scratch directory
#   LAB_APT_CONF  private apt configuration with deb-src entries
# Results: OUT/xen (multiboot image for QEMU -kernel), OUT/xen-syms,
# OUT/config, OUT/livepatch/*.livepatch, OUT/BUILD-IDS.
set -euo pipefail
. "$(dirname "$0")/pins.sh"
: "${OUT:?}" "${WORK:?}" "${LAB_APT_CONF:?}"
JOBS=$(nproc)

step() { printf '== xen: %s (%s)\n' "$*" "$(date +%T)"; }

fetch_sources() {
    step "apt-get source $LAB_XEN_SRC_PKG=$LAB_XEN_VERSION"
    mkdir -p "$WORK/src" "$WORK/deb"
    (cd "$WORK/src" && apt-get -c "$LAB_APT_CONF" -q -y source "$LAB_XEN_SRC_PKG=$LAB_XEN_VERSION")
    step "apt-get download $LAB_XEN_CONFIG_PKG=$LAB_XEN_VERSION"
    (cd "$WORK/deb" && apt-get -c "$LAB_APT_CONF" -q -y download "$LAB_XEN_CONFIG_PKG=$LAB_XEN_VERSION")
    dpkg-deb -x "$WORK"/deb/*.deb "$WORK/deb/root"
}

# set_config FILE KEY=VALUE: replace or add one Kconfig line
set_config() {
    local file=$1 key=${2%%=*}
    sed -i -e "/^$key=/d" -e "/^# $key is not set/d" "$file"
    echo "$2" >> "$file"
}

configure_xen() {
    local srcdir=$1 base opt
    base=$(ls "$WORK"/deb/root/boot/xen-*.config)
    step "config: $(basename "$base") + $LAB_XEN_CONFIG_DELTA"
    cp "$base" "$srcdir/xen/.config"
    for opt in $LAB_XEN_CONFIG_DELTA; do set_config "$srcdir/xen/.config" "$opt"; done
    make -C "$srcdir/xen" olddefconfig
    for opt in $LAB_XEN_CONFIG_DELTA; do
        grep -qx "$opt" "$srcdir/xen/.config" ||
            { echo "xen: $opt did not survive olddefconfig" >&2; exit 1; }
    done
}

# build_id FILE -> the GNU build-id note of an ELF file, in hex
build_id() { readelf -n "$1" | sed -n 's/^ *Build ID: *//p' | head -1; }

# depends_id PAYLOAD -> the xen build-id a livepatch payload requires
depends_id() {
    objcopy -O binary --only-section=.livepatch.depends "$1" "$WORK/dep.bin"
    tail -c 20 "$WORK/dep.bin" | od -An -tx1 | tr -d ' \n'
}

build_and_collect() {
    local srcdir=$1 xen_id p id dep
    step "make -C xen build (-j$JOBS)"
    make -C "$srcdir/xen" -j"$JOBS" XEN_TARGET_ARCH=x86_64 build
    step "make -C xen tests (livepatch payloads)"
    make -C "$srcdir/xen" -j"$JOBS" XEN_TARGET_ARCH=x86_64 tests
    step "collect"
    mkdir -p "$OUT/livepatch"
    cp "$srcdir/xen/xen" "$srcdir/xen/xen-syms" "$OUT/"
    cp "$srcdir/xen/.config" "$OUT/config"
    cp "$srcdir"/xen/test/livepatch/*.livepatch "$OUT/livepatch/"
    xen_id=$(build_id "$OUT/xen-syms")
    [[ -n $xen_id ]] || { echo "xen: xen-syms has no build-id" >&2; exit 1; }
    {
        echo "# file build-id depends-on"
        echo "xen-syms $xen_id -"
        for p in "$OUT"/livepatch/*.livepatch; do
            id=$(build_id "$p"); dep=$(depends_id "$p")
            if [[ $(basename "$p") == xen_hello_world.livepatch && $dep != "$xen_id" ]]; then
                echo "xen: xen_hello_world depends on $dep, not on xen-syms $xen_id" >&2; exit 1
            fi
            echo "livepatch/$(basename "$p") ${id:--} ${dep:--}"
        done
    } > "$OUT/BUILD-IDS"
    cat "$OUT/BUILD-IDS"
    echo "$LAB_XEN_SRC_PKG $LAB_XEN_VERSION + $LAB_XEN_CONFIG_DELTA" > "$OUT/VERSION"
}

main() {
    fetch_sources
    local srcdir
    srcdir=$(ls -d "$WORK"/src/*/ | head -1)
    configure_xen "$srcdir"
    build_and_collect "$srcdir"
}
main "$@"
