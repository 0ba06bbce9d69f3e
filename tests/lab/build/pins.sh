# tests/lab/build/pins.sh -- everything the lab's images are pinned to.
#
# Sourced by the build stages and by `lab build` to compute the cache keys:
# change anything here and the affected images are rebuilt on the next
# `lab build`.  The hypervisor, the dom0 tools and the livepatch payloads
# must all be the same Xen release: a payload only applies to the exact
# hypervisor binary it was built against.

# Debian release the dom0 image is bootstrapped from (main only: the
# security suite carries a newer Xen than the one pinned here).
LAB_SUITE=bookworm

# The Xen release: source package, the binary package whose .config is the
# base of ours, and the dom0 userspace.
LAB_XEN_VERSION=4.17.5+72-g01140da4e8-1
LAB_XEN_SRC_PKG=xen
LAB_XEN_CONFIG_PKG=xen-hypervisor-4.17-amd64
LAB_XEN_UTILS_PKG=xen-utils-4.17

# Our changes to Debian's hypervisor config: shadow paging is needed to
# live-migrate PV guests (log-dirty mode), livepatch for `xen-livepatch`.
LAB_XEN_CONFIG_DELTA="CONFIG_SHADOW_PAGING=y CONFIG_LIVEPATCH=y"

# OpenSSH in dom0: sshd on the lab link and the client, so that plain
# `xl migrate GUEST 192.0.2.2` (xl's default transport: ssh) works between
# the hosts, as the baseline of bench/lab-drain.  Pinned like Xen: the
# version of LAB_SUITE main, checked after debootstrap (a Debian point
# release replacing it makes a build from nothing fail: bump it here).
LAB_OPENSSH_VERSION=1:9.2p1-2+deb12u10
LAB_OPENSSH_PKGS="openssh-server openssh-client"

# Packages of the dom0 image on top of debootstrap's minbase.  Runtime
# libraries the project links against are listed here too.
LAB_DOM0_PACKAGES="$LAB_XEN_UTILS_PKG linux-image-amd64 iproute2 busybox-static
 socat kmod procps coreutils libyajl2 libssl3 libelf1 libzstd1 liblz4-1
 $LAB_OPENSSH_PKGS"

# Kernel modules dom0 loads (their dependencies are kept too); the rest of
# the kernel's modules are pruned from the image.
LAB_DOM0_MODULES="virtio_console virtio_pci virtio_net xen-evtchn xenfs
 xen-privcmd xen-gntdev xen-gntalloc xen-netback xen-blkback 9pnet_virtio 9p"

