# tests/lab/lib/guest.sh -- ticking PV guests: `lab guest`, `lab ticks`,
# `lab reset`.
#
# A lab guest is the Debian kernel with a busybox initramfs whose init
# prints "tick N" every second (dom0: /usr/lib/xenmaint-lab/guest/); its
# config is written to /etc/xen/lab/NAME.cfg.  xenconsoled logs each
# guest's console with a timestamp per line (1 s resolution) to
# /var/log/xen/console/guest-NAME.log, or guest-NAME--incoming.log on a
# host the guest migrated to.  `lab ticks` merges these logs from every
# host (the dom0 clocks are set from this machine at `lab up` and at each
# scenario) to tell where a guest runs and the largest gap between
# consecutive ticks: an upper bound on the guest's downtime, e.g. while
# migrating.

LAB_GUEST_DIR=/usr/lib/xenmaint-lab/guest
LAB_CONSOLE_DIR=/var/log/xen/console

# lab_guest_host NAME -> the host where guest NAME runs, or fail
lab_guest_host() {
    local h
    while read -r h; do
        lab_exec -n "$h" "xl domid $(lab_quote "$1")" > /dev/null 2>&1 && { echo "$h"; return 0; }
    done < <(lab_hosts_up)
    return 1
}

lab_cmd_guest() {
    (($# >= 2 && $# <= 3)) || lab_die "usage: lab guest HOST NAME [MEM_MIB]"
    local host=$1 name=$2 mem=${3:-128} where h q
    [[ $name =~ ^[A-Za-z0-9_.-]+$ ]] || lab_die "guest name '$name': use letters, digits, . _ -"
    [[ $mem =~ ^[0-9]+$ ]] && ((mem >= 96)) || lab_die "guest memory must be at least 96 MiB (got '$mem')"
    if where=$(lab_guest_host "$name"); then lab_die "guest $name already runs on host $where"; fi
    q=$(lab_quote "$name")
    while read -r h; do          # forget the ticks of an earlier guest of that name
        lab_exec -n "$h" "rm -f $LAB_CONSOLE_DIR/guest-$q.log $LAB_CONSOLE_DIR/guest-$q--incoming.log"
    done < <(lab_hosts_up)
    lab_exec "$host" "mkdir -p /etc/xen/lab && cat > /etc/xen/lab/$q.cfg" <<CFG
# lab guest (tests/lab/lib/guest.sh): prints "tick N" every second
name = "$name"
type = "pv"
kernel = "$LAB_GUEST_DIR/vmlinuz"
ramdisk = "$LAB_GUEST_DIR/initrd.gz"
extra = "console=hvc0 loglevel=3 rdinit=/init"
memory = $mem
vcpus = 1
on_crash = "preserve"
CFG
    lab_exec -n "$host" "xl create /etc/xen/lab/$q.cfg" || lab_die "xl create $name failed on host $host"
    lab_exec -n "$host" "for i in \$(seq 240); do grep -q 'tick ' $LAB_CONSOLE_DIR/guest-$q.log 2>/dev/null && exit 0; sleep 0.5; done; exit 1" ||
        { lab_exec -n "$host" "tail -n 20 $LAB_CONSOLE_DIR/guest-$q.log" >&2 || true
          lab_die "guest $name on host $host printed no tick within 120 s"; }
    lab_say "guest $name runs on host $host (domid $(lab_exec -n "$host" "xl domid $q")) and ticks"
}

lab_cmd_ticks() {
    local from=()
    if (($# == 3)) && [[ $2 == --from ]]; then
        [[ $3 =~ ^[0-9]+$ ]] || lab_die "lab ticks: --from takes a tick number, not '$3'"
        from=("$3")
    elif (($# != 1)); then
        lab_die "usage: lab ticks NAME [--from TICK]"
    fi
    local name=$1 q h
    q=$(lab_quote "$name")
    while read -r h; do
        lab_exec -n "$h" "
            d=\$(xl domid $q 2>/dev/null) && echo \"where $h \$d\"
            for f in $LAB_CONSOLE_DIR/guest-$q.log $LAB_CONSOLE_DIR/guest-$q--incoming.log; do
                [ -f \"\$f\" ] && sed -n 's/^\\[\\([0-9-]* [0-9:]*\\)\\] tick \\([0-9]*\\).*/tick $h \\1 \\2/p' \"\$f\"
            done; true"
    done < <(lab_hosts_up) | python3 "$LAB_DIR/lib/ticks.py" "$name" "${from[@]}"
}

# lab_reset_host HOST: destroy its guests, revert and unload its livepatches,
# forget the guest console logs
lab_reset_host() {
    lab_exec -n "$1" '
        for d in $(xl list | awk "NR > 2 { print \$1 }"); do xl destroy "$d" || echo "xl destroy $d failed" >&2; done
        for p in $(xen-livepatch list 2>/dev/null | awk "\$2 == \"|\" && \$1 != \"ID\" { print \$1 }"); do
            xen-livepatch revert "$p" > /dev/null 2>&1; xen-livepatch unload "$p" > /dev/null 2>&1 || echo "cannot unload livepatch $p" >&2
        done
        rm -f /var/log/xen/console/guest-*.log
        [ -z "$(xl list | awk "NR > 2")" ]' ||
        lab_die "reset: host $1 still has guests or livepatches"
}

lab_cmd_reset() {
    local h
    while read -r h; do lab_reset_host "$h"; done < <(lab_hosts_up)
}
