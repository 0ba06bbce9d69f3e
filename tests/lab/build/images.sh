#!/bin/bash
# tests/lab/build/images.sh -- build stage "images": the dom0 root
# filesystem (as an initramfs cpio) and the PV guest image.
#
# dom0: debootstrap minbase of LAB_SUITE (main only, so xen-utils-4.17 is
# the pinned LAB_XEN_VERSION and OpenSSH LAB_OPENSSH_VERSION, both verified
# below) with LAB_DOM0_PACKAGES, the Debian kernel's modules pruned to
# LAB_DOM0_MODULES and their dependencies, docs/locales/python/firmware
# removed.  ssh: a pool root key pair made here (every host booted from
# this image has it: root of each dom0 may ssh to the others, from the lab
# link only), client settings for the lab link, no host keys (dom0/init
# makes each host its own and starts sshd on the lab address).  No /init:
# `lab up` appends the lab's own dom0 files (tests/lab/dom0) and the
# project's binaries as further cpio archives at every boot.
# guest: the same Debian kernel and a tiny busybox initramfs whose /init
# prints "tick N" on the console every second (and whose /sbin/poweroff
# powers it off when Xen asks).
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

# pinned PKG VERSION: fail unless dom0 got exactly VERSION of PKG
pinned() {
    local have
    have=$(chroot "$ROOT" dpkg-query -W -f='${Version}' "$1")
    [[ $have == "$2" ]] ||
        { echo "images: dom0 got $1 $have, pinned $2 (build/pins.sh)" >&2; exit 1; }
}

verify_versions() {
    local p
    pinned "$LAB_XEN_UTILS_PKG" "$LAB_XEN_VERSION"
    for p in $LAB_OPENSSH_PKGS; do pinned "$p" "$LAB_OPENSSH_VERSION"; done
    chroot "$ROOT" dpkg-query -W -f='${Package} ${Version}\n' \
        "$LAB_XEN_UTILS_PKG" 'linux-image-*' busybox-static socat $LAB_OPENSSH_PKGS |
        awk 'NF == 2' > "$OUT/VERSIONS"
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

# setup_ssh: root's key pair for the pool (made once per image build; the
# public key is authorized from the lab link 192.0.2.0/24 only), the
# client's settings for the lab link (no host key prompts: the hosts get
# fresh host keys at every boot; batch mode, so a failure never waits for
# a password), and no host keys in the image: dom0/init generates them.
setup_ssh() {
    local d=$ROOT/root/.ssh
    step "ssh: pool root key pair, client settings for the lab link"
    install -d -m 700 "$d"
    rm -f "$d/id_ed25519" "$d/id_ed25519.pub"
    chroot "$ROOT" ssh-keygen -q -t ed25519 -N '' -C "xenmaint-lab pool root" -f /root/.ssh/id_ed25519
    printf 'from="192.0.2.0/24" %s\n' "$(cat "$d/id_ed25519.pub")" > "$d/authorized_keys"
    chmod 600 "$d/authorized_keys" "$d/id_ed25519"
    cat > "$ROOT/etc/ssh/ssh_config.d/xenmaint-lab.conf" <<'CONF'
# xenmaint lab (tests/lab/build/images.sh): the dom0s of the lab link
# trust each other with the pool root key; fresh host keys at every boot.
Host 192.0.2.*
    User root
    IdentityFile /root/.ssh/id_ed25519
    StrictHostKeyChecking no
    UserKnownHostsFile /dev/null
    LogLevel ERROR
    BatchMode yes
    ConnectTimeout 15
    ServerAliveInterval 15
    ServerAliveCountMax 4
CONF
    rm -f "$ROOT"/etc/ssh/ssh_host_*_key "$ROOT"/etc/ssh/ssh_host_*_key.pub
}

build_guest() {
    local g=$WORK/guestfs
    step "guest initramfs"
    mkdir -p "$g"/{bin,sbin,proc,sys,dev}
    cp "$ROOT/bin/busybox" "$g/bin/busybox"
    # The kernel runs /sbin/poweroff when Xen asks the guest to power off
    # (xl shutdown, xenmaint's --shutdown-blocked); init is a plain loop,
    # so power off at once.
    cat > "$g/sbin/poweroff" <<'POWEROFF'
#!/bin/busybox sh
echo "lab guest: powering off" > /dev/console 2>/dev/null
exec /bin/busybox poweroff -f
POWEROFF
    chmod +x "$g/sbin/poweroff"
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
    setup_ssh
    build_guest
    pack_dom0
    ls -la "$OUT"
}
main "$@"
