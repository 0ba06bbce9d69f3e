# tests/lab/lib/common.sh -- shared definitions of the lab: where things
# live (cache, runtime dir, repository), messages, timing, the host table
# and the cache keys.  Sourced by `lab` and by every lib/*.sh file; it
# defines functions and variables only and runs nothing.

LAB_DIR=${LAB_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
REPO_DIR=${REPO_DIR:-$(cd "$LAB_DIR/../.." && pwd)}
LAB_CACHE=${XENMAINT_LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/xenmaint-lab}
LAB_RUN=${XENMAINT_LAB_RUN:-/tmp/xenmaint-lab-$(id -u)}
LAB_TIMEOUT=${LAB_TIMEOUT:-300}

# Host sizing (MiB).  Each host must hold dom0 plus about three 128 MiB
# guests and one incoming migration; four hosts must fit in 24 GiB.
LAB_HOST_MEM=${LAB_HOST_MEM:-2048}
LAB_DOM0_MEM=${LAB_DOM0_MEM:-768}
LAB_MTU=${LAB_MTU:-61440}
LAB_BOOT_TIMEOUT=${LAB_BOOT_TIMEOUT:-300}
LAB_EXEC_PORTS=4          # virtio-serial command ports per host
LAB_AGENT_PORT=7474
LAB_HOST_NAMES=(A B C D)

# Debian packages the build machine needs for the lab and the project
# (not in build/pins.sh: they do not change the images).
LAB_HOST_PACKAGES="qemu-system-x86 debootstrap debian-archive-keyring wget
 busybox-static cpio socat flex bison bc python3 build-essential dpkg-dev
 gzip util-linux iproute2 autoconf automake pkg-config libxen-dev
 libyajl-dev libssl-dev libelf-dev libcunit1-dev libzstd-dev liblz4-dev
 libxxhash-dev"

# shellcheck source=../build/pins.sh
. "$LAB_DIR/build/pins.sh"

# --- messages ------------------------------------------------------------

lab_say()  { printf '[lab] %s\n' "$*" >&2; }
lab_warn() { printf '[lab] WARNING: %s\n' "$*" >&2; }
lab_die()  { printf '[lab] ERROR: %s\n' "$*" >&2; exit 1; }

lab_now()  { date +%s.%N; }
# lab_since T0 -> seconds elapsed since T0, one decimal
lab_since() { awk -v t0="$1" -v t1="$(lab_now)" 'BEGIN { printf "%.1f", t1 - t0 }'; }

# --- hosts ---------------------------------------------------------------

# lab_host_index NAME -> 0..3, or fail
lab_host_index() {
    local i
    for i in "${!LAB_HOST_NAMES[@]}"; do
        [[ ${LAB_HOST_NAMES[$i]} == "$1" ]] && { echo "$i"; return 0; }
    done
    lab_die "unknown host '$1' (hosts are A, B, C, D)"
}
lab_host_ip()  { echo "192.0.2.$(( $(lab_host_index "$1") + 1 ))"; }
lab_host_mac() { printf '52:54:00:00:02:%02x\n' $(( $(lab_host_index "$1") + 1 )); }

# lab_hosts_up -> names of the hosts of the current `lab up`, one a line
lab_hosts_up() {
    [[ -f $LAB_RUN/hosts ]] && cat "$LAB_RUN/hosts"
    return 0
}

# --- cache keys ----------------------------------------------------------

# lab_stage_key STAGE -> hash of the pins and of the stage's own script.
# The images of a stage live in $LAB_CACHE/STAGE-KEY.
lab_stage_key() {
    cat "$LAB_DIR/build/pins.sh" "$LAB_DIR/build/$1.sh" | sha256sum | cut -c1-16
}
lab_stage_dir() { echo "$LAB_CACHE/$1-$(lab_stage_key "$1")"; }

# lab_need_images -> fail unless both stages are in the cache
lab_need_images() {
    local s
    for s in xen images; do
        [[ -f $(lab_stage_dir $s)/.complete ]] ||
            lab_die "the $s images are not built (or out of date): run 'tests/lab/lab build'"
    done
}
