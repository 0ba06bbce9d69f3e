# tests/lab/lib/hosts.sh -- booting, reaching and stopping the lab hosts:
# `lab up`, `lab down`, `lab status`, `lab exec`, `lab copy`, `lab fetch`,
# `lab console`, `lab clock-sync`.
#
# Runtime files live in $LAB_RUN (short: unix socket paths are limited to
# 108 bytes): per host a directory HOST/ with qemu.pid, qemu.log, console.log
# (Xen + dom0 serial console), console.sock, qmp.sock, net.sock and the
# command ports exec.N.sock (+ exec.N.lock); shared: hosts (names of the
# hosts up), dom0-initrd.cpio, vmlinuz, switch.sock/switch.pid (3+ hosts).
# A host is a QEMU TCG machine booting the cached Xen with the Debian
# kernel as dom0 and dom0-initrd.cpio = cached dom0 image + the lab's dom0
# files (tests/lab/dom0, payloads, guest image) + the project's install.

LAB_PANIC_RE='Kernel panic|Panic on CPU|Xen crashed|Reboot in five seconds|FATAL PAGE FAULT'

lab_host_dir() { echo "$LAB_RUN/$1"; }

# lab_qemu_pid HOST -> pid of HOST's QEMU if it is running (and ours)
lab_qemu_pid() {
    local f pid
    f=$(lab_host_dir "$1")/qemu.pid
    [[ -f $f ]] || return 1
    pid=$(cat "$f")
    [[ -n $pid ]] && [[ -r /proc/$pid/cmdline ]] &&
        tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -- "$(lab_host_dir "$1")/" || return 1
    echo "$pid"
}

# --- exec and copies -------------------------------------------------------

# lab_exec [-n] HOST CMD...: run CMD in HOST's dom0 (see lib/labexec.py)
lab_exec() {
    local nostdin=()
    [[ ${1:-} == -n ]] && { nostdin=(-n); shift; }
    (($# >= 2)) || lab_die "usage: lab exec [-n] HOST CMD..."
    local host=$1; shift
    lab_host_index "$host" > /dev/null
    lab_qemu_pid "$host" > /dev/null || lab_die "host $host is not up (lab up)"
    python3 "$LAB_DIR/lib/labexec.py" "${nostdin[@]}" "$(lab_host_dir "$host")" "$LAB_TIMEOUT" "$*"
}
lab_cmd_exec() { lab_exec "$@"; }

# lab_quote ARG -> ARG quoted for a dom0 shell
lab_quote() { printf '%q' "$1"; }

lab_cmd_copy() {
    (($# == 3)) || lab_die "usage: lab copy HOST SRC DST"
    local host=$1 src=$2 dst
    dst=$(lab_quote "$3")
    if [[ -d $src ]]; then
        tar -C "$src" -cf - . | lab_exec "$host" "mkdir -p $dst && tar -C $dst -xf -"
    elif [[ -f $src ]]; then
        lab_exec "$host" "d=$dst; [ -d \"\$d\" ] && d=\"\$d/$(lab_quote "$(basename "$src")")\"; cat > \"\$d\"" < "$src"
    else
        lab_die "copy: $src is neither a file nor a directory"
    fi
}

lab_cmd_fetch() {
    (($# == 3)) || lab_die "usage: lab fetch HOST SRC DST"
    local tmp
    tmp=$(mktemp "$3.XXXXXX")
    if lab_exec -n "$1" "cat $(lab_quote "$2")" > "$tmp"; then
        mv "$tmp" "$3"
    else
        rm -f "$tmp"; lab_die "fetch: could not read $2 on host $1"
    fi
}

# lab_clock_offset HOST -> HOST's clock minus this machine's, estimated at
# the midpoint of a `date` round trip
lab_clock_offset() {
    local t0 t1 there
    t0=$(lab_now)
    there=$(lab_exec -n "$1" "date +%s.%N") || return 1
    t1=$(lab_now)
    awk -v a="$t0" -v b="$t1" -v t="$there" 'BEGIN { printf "%.3f\n", t - (a + b) / 2 }'
}

# lab_clock_sync_one HOST: set HOST's clock from this machine's: a coarse
# set, then a correction by the measured offset applied inside dom0 (so
# the command's transit time does not matter); prints the offset left
lab_clock_sync_one() {
    local h=$1 off
    lab_exec -n "$h" "date -u -s @$(date +%s.%N) > /dev/null" &&
        off=$(lab_clock_offset "$h") &&
        lab_exec -n "$h" "t=\$(date +%s.%N); date -u -s @\$(awk -v t=\$t -v o=$off 'BEGIN { printf \"%.6f\", t - o }') > /dev/null" &&
        off=$(lab_clock_offset "$h") ||
        { lab_warn "clock-sync: could not set the clock of host $h"; return 1; }
    lab_say "clock of $h set: offset now ${off} s"
}

# lab_clock_sync HOST...: the dom0 clocks in step with this machine's, so
# that console timestamps compare across hosts (hosts done in parallel)
lab_clock_sync() {
    local h pids=() rc=0 p
    for h in "$@"; do lab_clock_sync_one "$h" & pids+=($!); done
    for p in "${pids[@]}"; do wait "$p" || rc=1; done
    ((rc == 0)) || lab_die "clock-sync failed"
}
lab_cmd_clock_sync() {
    local hosts=("$@")
    ((${#hosts[@]})) || mapfile -t hosts < <(lab_hosts_up)
    lab_clock_sync "${hosts[@]}"
}

lab_cmd_console() {
    (($# >= 1)) || lab_die "usage: lab console HOST [LINES]"
    local log
    log=$(lab_host_dir "$1")/console.log
    [[ -f $log ]] || lab_die "no console log for host $1"
    tail -n "${2:-60}" "$log"
}

# lab_dump_logs: the tail of every host's console and QEMU log (on failures)
lab_dump_logs() {
    local h d
    for h in "${LAB_HOST_NAMES[@]}"; do
        d=$(lab_host_dir "$h")
        [[ -d $d ]] || continue
        echo "----- host $h: last lines of $d/console.log -----" >&2
        tail -n 25 "$d/console.log" >&2 2>/dev/null || true
        if [[ -s $d/qemu.log ]]; then
            echo "----- host $h: $d/qemu.log -----" >&2
            tail -n 10 "$d/qemu.log" >&2
        fi
    done
    echo "----- (logs kept in $LAB_RUN) -----" >&2
}

# --- booting -----------------------------------------------------------------

# lab_make_overlay DIR: the lab's own dom0 files, as a cpio archive tree
lab_make_overlay() {
    local o=$1 xen images
    xen=$(lab_stage_dir xen) images=$(lab_stage_dir images)
    rm -rf "$o"
    mkdir -p "$o/usr/lib/xenmaint-lab/livepatch" "$o/usr/lib/xenmaint-lab/guest" "$o/etc/profile.d"
    install -m 755 "$LAB_DIR/dom0/init" "$o/init"
    install -m 755 "$LAB_DIR/dom0/labd" "$o/usr/lib/xenmaint-lab/labd"
    cp "$xen"/livepatch/*.livepatch "$xen/BUILD-IDS" "$o/usr/lib/xenmaint-lab/livepatch/"
    cp "$images/vmlinuz" "$o/usr/lib/xenmaint-lab/guest/vmlinuz"
    cp "$images/guest-initrd.gz" "$o/usr/lib/xenmaint-lab/guest/initrd.gz"
    echo 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' > "$o/etc/profile.d/xenmaint-lab.sh"
}

# lab_pack_cpio DIR > ARCHIVE: a newc archive of DIR owned by root
lab_pack_cpio() { (cd "$1" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet); }

# lab_make_initrd WITH_PROJECT: $LAB_RUN/dom0-initrd.cpio for this boot
lab_make_initrd() {
    local images
    images=$(lab_stage_dir images)
    lab_make_overlay "$LAB_RUN/overlay"
    lab_pack_cpio "$LAB_RUN/overlay" > "$LAB_RUN/overlay.cpio"
    {
        cat "$images/dom0.cpio" "$LAB_RUN/overlay.cpio"
        [[ $1 == yes ]] && cat "$LAB_RUN/project.cpio"
    } > "$LAB_RUN/dom0-initrd.cpio"
    cp "$images/vmlinuz" "$LAB_RUN/vmlinuz"
    cp "$(lab_stage_dir xen)/xen" "$LAB_RUN/xen"
}

# lab_netdev_args HOST NHOSTS -> the QEMU -netdev option of HOST
lab_netdev_args() {
    local h=$1 n=$2 peer
    if ((n == 1)); then
        echo "-netdev dgram,id=n0,local.type=unix,local.path=$LAB_RUN/$h/net.sock,remote.type=unix,remote.path=$LAB_RUN/$h/loop.sock"
        return
    fi
    if ((n == 2)); then
        [[ $h == A ]] && peer=$LAB_RUN/B/net.sock || peer=$LAB_RUN/A/net.sock
    else
        peer=$LAB_RUN/switch.sock
    fi
    echo "-netdev dgram,id=n0,local.type=unix,local.path=$LAB_RUN/$h/net.sock,remote.type=unix,remote.path=$peer"
}

# lab_start_switch N: the learning switch joining hosts A.. (3+ hosts)
lab_start_switch() {
    local n=$1 i socks=()
    for ((i = 0; i < n; i++)); do socks+=("$LAB_RUN/${LAB_HOST_NAMES[$i]}/net.sock"); done
    setsid python3 "$LAB_DIR/lib/switch.py" "$LAB_RUN/switch.sock" "$LAB_RUN/switch.pid" "${socks[@]}" \
        < /dev/null > "$LAB_RUN/switch.log" 2>&1 &
    for i in $(seq 50); do [[ -S $LAB_RUN/switch.sock ]] && return 0; sleep 0.1; done
    lab_die "the lab switch did not start (see $LAB_RUN/switch.log)"
}

# lab_start_host HOST NHOSTS: start HOST's QEMU (daemonized, pid recorded)
lab_start_host() {
    local h=$1 n=$2 d i ports=() netdev
    d=$(lab_host_dir "$h")
    mkdir -p "$d"
    for ((i = 0; i < LAB_EXEC_PORTS; i++)); do
        ports+=(-chardev "socket,id=exec$i,path=$d/exec.$i.sock,server=on,wait=off"
                -device "virtserialport,chardev=exec$i,name=lab.$i")
    done
    read -r -a netdev <<< "$(lab_netdev_args "$h" "$n")"
    lab_now > "$d/t0"
    qemu-system-x86_64 \
        -name "xenmaint-lab-$h" \
        -accel "tcg,thread=multi,tb-size=${LAB_TCG_TB_MIB:-256}" -machine pc -cpu qemu64 -smp "${LAB_HOST_CPUS:-1}" -m "$LAB_HOST_MEM" \
        -rtc base=utc -display none -vga none -no-reboot -monitor none -nodefaults \
        -chardev "socket,id=ser0,path=$d/console.sock,server=on,wait=off,logfile=$d/console.log" \
        -serial chardev:ser0 \
        -qmp "unix:$d/qmp.sock,server=on,wait=off" \
        "${netdev[@]}" -device "virtio-net-pci,netdev=n0,mac=$(lab_host_mac "$h"),host_mtu=$LAB_MTU" \
        -device virtio-serial-pci "${ports[@]}" \
        -kernel "$LAB_RUN/xen" \
        -append "console=com1 com1=115200,8n1 dom0_mem=${LAB_DOM0_MEM}M,max:${LAB_DOM0_MEM}M dom0_max_vcpus=1 loglvl=all guest_loglvl=all noreboot" \
        -initrd "$LAB_RUN/vmlinuz console=hvc0 earlyprintk=xen loglevel=4 rdinit=/init lab.host=$h lab.ip=$(lab_host_ip "$h") lab.mtu=$LAB_MTU,$LAB_RUN/dom0-initrd.cpio" \
        -daemonize -pidfile "$d/qemu.pid" -D "$d/qemu.log" \
        > "$d/qemu.out" 2>&1 ||
        { cat "$d/qemu.out" >&2; lab_die "QEMU of host $h did not start"; }
}

# lab_wait_ready HOST...: wait until every dom0 answers on its command port;
# fail fast when a QEMU dies or a console shows a panic
lab_wait_ready() {
    local t0 h pending=("$@") left d
    t0=$(lab_now)
    while ((${#pending[@]})); do
        left=()
        for h in "${pending[@]}"; do
            d=$(lab_host_dir "$h")
            lab_qemu_pid "$h" > /dev/null || lab_die "QEMU of host $h died while booting"
            grep -Eq "$LAB_PANIC_RE" "$d/console.log" 2>/dev/null &&
                lab_die "host $h crashed while booting: $(grep -Em1 "$LAB_PANIC_RE" "$d/console.log")"
            if grep -q LAB_DOM0_READY "$d/console.log" 2>/dev/null &&
                LAB_TIMEOUT=20 lab_exec -n "$h" true 2>/dev/null; then
                lab_say "host $h ready after $(lab_since "$(cat "$d/t0")") s"
            else
                left+=("$h")
            fi
        done
        pending=("${left[@]+"${left[@]}"}")
        ((${#pending[@]})) || break
        awk -v t0="$t0" -v now="$(lab_now)" -v lim="$LAB_BOOT_TIMEOUT" 'BEGIN { exit !(now - t0 > lim) }' &&
            lab_die "hosts ${pending[*]} not ready within $LAB_BOOT_TIMEOUT s (LAB_BOOT_TIMEOUT)"
        sleep 1
    done
}

# lab_up_exit_trap: on a failed `lab up`, show the logs and stop the hosts
lab_up_exit_trap() {
    local rc=$?
    ((rc == 0)) && return
    lab_dump_logs
    lab_say "lab up failed: stopping the hosts it started (logs kept in $LAB_RUN)"
    lab_cmd_down > /dev/null 2>&1 || true
}

lab_cmd_up() {
    local n=2 project=yes a i h t0 hosts=()
    for a in "$@"; do
        case $a in
            --no-project) project=no ;;
            [1-4])        n=$a ;;
            *)            lab_die "usage: lab up [N (1-4)] [--no-project]" ;;
        esac
    done
    lab_need_images
    for h in "${LAB_HOST_NAMES[@]}"; do
        lab_qemu_pid "$h" > /dev/null && lab_die "host $h is already up: 'lab down' first"
    done
    t0=$(lab_now)
    mkdir -p "$LAB_RUN"
    rm -rf "$LAB_RUN"/{A,B,C,D} "$LAB_RUN"/switch.* "$LAB_RUN"/hosts "$LAB_RUN"/project
    ((${#LAB_RUN} < 60)) || lab_die "XENMAINT_LAB_RUN=$LAB_RUN is too long for unix socket paths"
    for ((i = 0; i < n; i++)); do hosts+=("${LAB_HOST_NAMES[$i]}"); done
    if [[ $project == yes ]]; then
        lab_project_build
    else
        lab_say "--no-project: booting the baseline without the project's binaries"
    fi
    lab_make_initrd "$project"
    echo "$project" > "$LAB_RUN/project"
    trap lab_up_exit_trap EXIT
    ((n >= 3)) && lab_start_switch "$n"
    for h in "${hosts[@]}"; do lab_start_host "$h" "$n"; done
    printf '%s\n' "${hosts[@]}" > "$LAB_RUN/hosts"
    lab_say "booting ${hosts[*]} (QEMU TCG, ${LAB_HOST_MEM} MiB each, dom0 ${LAB_DOM0_MEM} MiB)"
    lab_wait_ready "${hosts[@]}"
    lab_clock_sync "${hosts[@]}"
    if [[ $project == yes ]]; then
        lab_agent_setup "${hosts[@]}"
    fi
    trap - EXIT
    lab_say "lab up: ${hosts[*]} ready in $(lab_since "$t0") s"
}

lab_cmd_down() {
    local h pid i stopped=()
    for h in "${LAB_HOST_NAMES[@]}"; do
        pid=$(lab_qemu_pid "$h") || continue
        stopped+=("$h:$pid(peak_rss=$(awk '/VmHWM/ { print int($2 / 1024) }' "/proc/$pid/status")MiB)")
        kill "$pid" 2>/dev/null || true
    done
    for h in "${LAB_HOST_NAMES[@]}"; do
        for i in $(seq 50); do lab_qemu_pid "$h" > /dev/null || break; sleep 0.2; done
        pid=$(lab_qemu_pid "$h") && { lab_warn "host $h (pid $pid) ignored SIGTERM: killing it"; kill -9 "$pid"; }
    done
    if [[ -f $LAB_RUN/switch.pid ]]; then
        pid=$(cat "$LAB_RUN/switch.pid")
        if tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q "lib/switch.py"; then
            kill "$pid" 2>/dev/null || true
        fi
        rm -f "$LAB_RUN/switch.pid"
    fi
    rm -f "$LAB_RUN/hosts"
    lab_say "lab down: stopped ${stopped[*]:-nothing} (logs kept in $LAB_RUN)"
}

lab_cmd_status() {
    local h pid any=no
    for h in "${LAB_HOST_NAMES[@]}"; do
        if pid=$(lab_qemu_pid "$h"); then
            any=yes
            printf 'host %s  %s  up %ss  qemu pid %s  rss %s MiB\n' "$h" "$(lab_host_ip "$h")" \
                "$(lab_since "$(cat "$(lab_host_dir "$h")/t0")")" "$pid" \
                "$(awk '/VmRSS/ { print int($2 / 1024) }' "/proc/$pid/status")"
            LAB_TIMEOUT=30 lab_exec -n "$h" "xl list | tail -n +2 | awk '{ printf \"    %-20s domid %-3s mem %-5s state %s\\n\", \$1, \$2, \$3, \$5 }'" ||
                echo "    (dom0 does not answer)"
        fi
    done
    [[ $any == yes ]] || echo "no lab host is up"
    [[ -f $LAB_RUN/project ]] && echo "project installed: $(cat "$LAB_RUN/project")"
    return 0
}
