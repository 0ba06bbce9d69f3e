#!/bin/bash
# tests/lab/build/images.sh -- build stage "images": the dom0 root
# filesystem (as an initramfs cpio) and the PV guest image.
#
# dom0: debootstrap minbase of LAB_SUITE (main only, so xen-utils-4.17 is
# the pinned LAB_XEN_VERSION, verified below) with LAB_DOM0_PACKAGES, the
# Debian kernel's modules pruned to LAB_DOM0_MODULES and their
# dependencies, docs/locales/python/firmware removed.  It carries no /init:
# `lab up` appends the lab's own dom0 files (tests/lab/dom0) and the
# project's binaries as further cpio archives at every boot.
# guest: the same Debian kernel and a tiny busybox initramfs whose /init
# prints "tick N" on the console every second.
# Run by `lab build` (lib/build.sh) as root with:
#   OUT         empty directory receiving the results
#   WORK        scratch directory
#   LAB_MIRROR  Debian mirror URI for debootstrap (may be empty: default)
#   LAB_DEB_CACHE  directory keeping downloaded .debs between builds
# Results: OUT/dom0.cpio, OUT/vmlinuz, OUT/guest-initrd.gz, OUT/VERSIONS.
set -euo pipefail
. "$(dirname "$0")/pins.sh"
: "${OUT:?}" "${WORK:?}"
ROOT=$WORK/rootfs

step() { printf '== images: %s (%s)\n' "$*" "$(date +%T)"; }

bootstrap_rootfs() {
    local include
    include=$(echo $LAB_DOM0_PACKAGES | tr ' ' ',')
    step "debootstrap --variant=minbase $LAB_SUITE (+ $include)"
    # INITRD=No: the kernel's postinst makes no initramfs (dom0 boots from
    # this image itself; the guest has its own), which saves minutes
    # LAB_DEB_CACHE keeps the downloaded .debs for the next rebuild
    INITRD=No debootstrap --variant=minbase --components=main --include="$include" \
        ${LAB_DEB_CACHE:+--cache-dir="$LAB_DEB_CACHE"} "$LAB_SUITE" "$ROOT" ${LAB_MIRROR:+"$LAB_MIRROR"}
}

verify_versions() {
    local have
    have=$(chroot "$ROOT" dpkg-query -W -f='${Version}' "$LAB_XEN_UTILS_PKG")
    [[ $have == "$LAB_XEN_VERSION" ]] ||
        { echo "images: dom0 got $LAB_XEN_UTILS_PKG $have, pinned $LAB_XEN_VERSION" >&2; exit 1; }
    chroot "$ROOT" dpkg-query -W -f='${Package} ${Version}\n' \
        "$LAB_XEN_UTILS_PKG" 'linux-image-*' busybox-static socat | awk 'NF == 2' > "$OUT/VERSIONS"
    cat "$OUT/VERSIONS"
}

# prune_modules KVER: keep LAB_DOM0_MODULES and what they depend on
prune_modules() {
    local kver=$1 m f keep=$WORK/keepmods
    step "prune kernel modules of $kver"
    rm -rf "$keep"
    for m in $LAB_DOM0_MODULES; do
        chroot "$ROOT" modprobe -S "$kver" --show-depends "$m" | awk '/^insmod/ { print $2 }'
    done | sort -u | while read -r f; do
        mkdir -p "$keep/$(dirname "$f")"
        cp "$ROOT/$f" "$keep/$f"
    done
    rm -rf "$ROOT/lib/modules/$kver/kernel"
    cp -a "$keep/lib/modules/$kver/kernel" "$ROOT/lib/modules/$kver/"
    chroot "$ROOT" depmod "$kver"
}

build_guest() {
    local g=$WORK/guestfs
    step "guest initramfs"
    mkdir -p "$g"/{bin,proc,sys,dev}
    cp "$ROOT/bin/busybox" "$g/bin/busybox"
    cat > "$g/init" <<'GUEST'
#!/bin/busybox sh
# PID 1 of the lab's PV guest: print a numbered tick every second.
/bin/busybox --install -s /bin
mount -t proc proc /proc
i=0
while true; do
    i=$((i + 1))
    echo "tick $i up=$(cut -d' ' -f1 /proc/uptime)"
    sleep 1
done
GUEST
    chmod +x "$g/init"
    (cd "$g" && find . | cpio -o -H newc --quiet | gzip -9) > "$OUT/guest-initrd.gz"
}

pack_dom0() {
    step "prune and pack dom0"
    rm -rf "$ROOT"/boot/* "$ROOT"/usr/share/{doc,man,info,locale,lintian} \
        "$ROOT"/var/cache/apt/* "$ROOT"/var/lib/apt/lists/* \
        "$ROOT"/usr/lib/python3* "$ROOT"/usr/lib/firmware "$ROOT"/lib/firmware \
        "$ROOT"/var/log/*.log
    du -sh "$ROOT"
    (cd "$ROOT" && find . | cpio -o -H newc --quiet) > "$OUT/dom0.cpio"
}

main() {
    bootstrap_rootfs
    verify_versions
    local kver
    kver=$(ls "$ROOT/lib/modules" | head -1)
    cp "$ROOT/boot/vmlinuz-$kver" "$OUT/vmlinuz"
    prune_modules "$kver"
    build_guest
    pack_dom0
    ls -la "$OUT"
}
main "$@"
