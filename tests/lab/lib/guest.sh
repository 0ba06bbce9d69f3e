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

# lab_guest_config NAME MEM -> the xl config of lab guest NAME
lab_guest_config() {
    cat <<CFG
# lab guest (tests/lab/lib/guest.sh): prints "tick N" every second
name = "$1"
type = "pv"
kernel = "$LAB_GUEST_DIR/vmlinuz"
ramdisk = "$LAB_GUEST_DIR/initrd.gz"
extra = "console=hvc0 loglevel=3 rdinit=/init"
memory = $2
vcpus = 1
on_crash = "preserve"
CFG
}

# lab guest [--paused] HOST NAME [MEM]: a ticking guest, restored from
# a snapshot or booted (below); --paused: a domain that only holds MEM
# MiB of the host's memory (made paused, never runs: a second to make
# where a boot of a large guest takes a minute), for a host that must
# look full
lab_cmd_guest() {
    local paused=no
    [[ ${1:-} == --paused ]] && { paused=yes; shift; }
    (($# >= 2 && $# <= 3)) || lab_die "usage: lab guest [--paused] HOST NAME [MEM_MIB]"
    local host=$1 name=$2 mem=${3:-128} where h q
    [[ $name =~ ^[A-Za-z0-9_.-]+$ ]] || lab_die "guest name '$name': use letters, digits, . _ -"
    [[ $mem =~ ^[0-9]+$ ]] && ((mem >= 96)) || lab_die "guest memory must be at least 96 MiB (got '$mem')"
    if where=$(lab_guest_host "$name"); then lab_die "guest $name already runs on host $where"; fi
    q=$(lab_quote "$name")
    while read -r h; do          # forget the ticks of an earlier guest of that name
        lab_exec -n "$h" "rm -f $LAB_CONSOLE_DIR/guest-$q.log $LAB_CONSOLE_DIR/guest-$q--incoming.log"
    done < <(lab_hosts_up)
    lab_guest_config "$name" "$mem" |
        lab_exec "$host" "mkdir -p /etc/xen/lab && cat > /etc/xen/lab/$q.cfg"
    if [[ $paused == yes ]]; then
        lab_exec -n "$host" "xl create -p /etc/xen/lab/$q.cfg" || lab_die "xl create -p $name failed on host $host"
        lab_say "guest $name holds $mem MiB on host $host (domid $(lab_exec -n "$host" "xl domid $q")), paused"
        return 0
    elif lab_snapshot_ready "$host" "$mem"; then
        lab_exec -n "$host" "xl restore /etc/xen/lab/$q.cfg $LAB_SNAP_DIR/$mem.img > /dev/null 2>&1" ||
            lab_die "xl restore $name (from the $mem MiB snapshot) failed on host $host"
    else
        lab_exec -n "$host" "xl create /etc/xen/lab/$q.cfg" || lab_die "xl create $name failed on host $host"
    fi
    lab_exec -n "$host" "for i in \$(seq 240); do grep -q 'tick ' $LAB_CONSOLE_DIR/guest-$q.log 2>/dev/null && exit 0; sleep 0.5; done; exit 1" ||
        { lab_exec -n "$host" "tail -n 20 $LAB_CONSOLE_DIR/guest-$q.log" >&2 || true
          lab_die "guest $name on host $host printed no tick within 120 s"; }
    lab_say "guest $name runs on host $host (domid $(lab_exec -n "$host" "xl domid $q")) and ticks"
}

# --- snapshots ------------------------------------------------------------
#
# Booting a lab guest takes 20-30 s of the host's one emulated CPU (three
# at once: 70-100 s), most of every scenario's set-up.  So a guest of at
# most LAB_SNAPSHOT_MAX_MIB (256) is restored instead from a snapshot: a
# template of that size is booted once per lab run (on the first host
# that needs one), saved with `xl save` once it ticks, and kept in that
# dom0's tmpfs as a sparse file (LAB_SNAP_DIR; zero blocks take no
# memory); a gzip copy on this machine ($LAB_RUN/snap, keyed on the
# images) seeds the other hosts.  `xl restore` of a 128 MiB guest takes
# about 1.5 s.  The restored guest is a running PV domain like a booted
# one, under its own name and a new uuid (the config given to restore
# has none); its ticks go on from the template's count.
# LAB_GUEST_SNAPSHOT=0 boots every guest.

LAB_SNAP_DIR=/run/lab-snap
LAB_SNAPSHOT_MAX_MIB=${LAB_SNAPSHOT_MAX_MIB:-256}

# lab_snapshot_ready HOST MEM: true once HOST holds the snapshot of a
# MEM MiB guest (made or copied now if need be); false (with a note)
# when snapshots are off or none could be had: the caller boots
lab_snapshot_ready() {
    local host=$1 mem=$2 gz lock fd rc=0
    [[ ${LAB_GUEST_SNAPSHOT:-1} != 0 ]] && ((mem <= LAB_SNAPSHOT_MAX_MIB)) || return 1
    mkdir -p "$LAB_RUN/snap" || return 1
    gz=$LAB_RUN/snap/$(lab_stage_key xen)-$(lab_stage_key images)-$mem.img.gz
    lock=$LAB_RUN/snap/$mem.lock
    # one maker per size: guests are often created several at once
    exec {fd}> "$lock" || return 1
    flock "$fd"
    if lab_exec -n "$host" "[ -s $LAB_SNAP_DIR/$mem.img ]"; then
        rc=0
    elif [[ -s $gz ]]; then
        lab_exec "$host" "mkdir -p $LAB_SNAP_DIR && zcat | cp --sparse=always /proc/self/fd/0 $LAB_SNAP_DIR/$mem.tmp && mv $LAB_SNAP_DIR/$mem.tmp $LAB_SNAP_DIR/$mem.img" < "$gz" ||
            { lab_warn "could not copy the $mem MiB guest snapshot to host $host: booting"; rc=1; }
    else
        lab_snapshot_make "$host" "$mem" "$gz" || rc=1
    fi
    exec {fd}>&-
    return "$rc"
}

# lab_snapshot_make HOST MEM GZ: boot a template of MEM MiB on HOST, save
# it once it ticks into HOST's LAB_SNAP_DIR, and a gzip copy into GZ
lab_snapshot_make() {
    local host=$1 mem=$2 gz=$3 t0 tmpl=lab-snap-$2
    t0=$(lab_now)
    lab_guest_config "$tmpl" "$mem" |
        lab_exec "$host" "mkdir -p $LAB_SNAP_DIR && rm -f $LAB_CONSOLE_DIR/guest-$tmpl.log && cat > $LAB_SNAP_DIR/$tmpl.cfg" &&
        lab_exec -n "$host" "xl create $LAB_SNAP_DIR/$tmpl.cfg > /dev/null 2>&1" ||
        { lab_warn "could not boot the snapshot template on host $host: booting"; return 1; }
    if ! lab_exec -n "$host" "
            for i in \$(seq 240); do grep -q 'tick ' $LAB_CONSOLE_DIR/guest-$tmpl.log 2>/dev/null && break; sleep 0.5; done
            grep -q 'tick ' $LAB_CONSOLE_DIR/guest-$tmpl.log &&
            xl save $tmpl $LAB_SNAP_DIR/$mem.raw > /dev/null 2>&1 &&
            cp --sparse=always $LAB_SNAP_DIR/$mem.raw $LAB_SNAP_DIR/$mem.tmp &&
            rm $LAB_SNAP_DIR/$mem.raw && mv $LAB_SNAP_DIR/$mem.tmp $LAB_SNAP_DIR/$mem.img"; then
        lab_exec -n "$host" "xl destroy $tmpl; rm -f $LAB_SNAP_DIR/$mem.raw $LAB_SNAP_DIR/$mem.tmp $LAB_CONSOLE_DIR/guest-$tmpl.log" > /dev/null 2>&1
        lab_warn "could not make the $mem MiB guest snapshot on host $host: booting"
        return 1
    fi
    lab_exec -n "$host" "rm -f $LAB_CONSOLE_DIR/guest-$tmpl.log; gzip -1 -c $LAB_SNAP_DIR/$mem.img" > "$gz.tmp" &&
        mv "$gz.tmp" "$gz" || { rm -f "$gz.tmp"; lab_warn "could not keep the $mem MiB guest snapshot here (other hosts will boot their own)"; }
    lab_say "snapshot of a $mem MiB guest made on host $host in $(lab_since "$t0") s"
}

# lab ticks NAME... [--from TICK]: a line per guest (ticks.py), from one
# pass over each host's console logs for all of them (a pass costs a
# `lab exec`, about a second under emulation); exits 1 if some guest
# has no tick at all
lab_cmd_ticks() {
    local names=() from=() name q h rc=0 all
    while (($#)); do
        case $1 in
            --from)
                (($# >= 2)) && [[ $2 =~ ^[0-9]+$ ]] || lab_die "lab ticks: --from takes a tick number, not '${2:-}'"
                from=("$2"); shift 2 ;;
            *)  [[ $1 =~ ^[A-Za-z0-9_.-]+$ ]] || lab_die "lab ticks: guest name '$1': use letters, digits, . _ -"
                names+=("$1"); shift ;;
        esac
    done
    ((${#names[@]})) || lab_die "usage: lab ticks NAME... [--from TICK]"
    # each line of a host's pass is prefixed with the guest's name
    all=$(while read -r h; do
        lab_exec -n "$h" "
            for n in ${names[*]}; do
                d=\$(xl domid \$n 2>/dev/null) && echo \"\$n where $h \$d\"
                for f in $LAB_CONSOLE_DIR/guest-\$n.log $LAB_CONSOLE_DIR/guest-\$n--incoming.log; do
                    [ -f \"\$f\" ] && sed -n -e \"s/^\\[\\([0-9-]* [0-9:]*\\)\\] tick \\([0-9]*\\) up=\\([0-9.]*\\).*/\$n tick $h \\1 \\2 \\3/p;t\" -e \"s/^\\[\\([0-9-]* [0-9:]*\\)\\] tick \\([0-9]*\\).*/\$n tick $h \\1 \\2/p\" \"\$f\"
                done
            done; true"
    done < <(lab_hosts_up))
    for name in "${names[@]}"; do
        awk -v n="$name" '$1 == n { $1 = ""; sub(/^ /, ""); print }' <<< "$all" |
            python3 "$LAB_DIR/lib/ticks.py" "$name" "${from[@]}" || rc=1
    done
    return "$rc"
}

# lab_reset_host HOST: destroy its guests, revert and unload its livepatches,
# forget the guest console logs.  A domain destroyed just before (a
# migrated guest's old copy) lingers as "(null)" while Xen frees its
# memory, seconds under emulation: it is waited for (30 s at most), not
# destroyed again; one still there after that lost its xenstore entries
# to a destroy cut short (a toolstack killed in between: the scenarios'
# `settled` fails on it) and is destroyed by its domid.
lab_reset_host() {
    lab_exec -n "$1" '
        for d in $(xl list | awk "NR > 2 && \$1 != \"(null)\" { print \$1 }"); do xl destroy "$d" || echo "xl destroy $d failed" >&2; done
        for p in $(xen-livepatch list 2>/dev/null | awk "\$2 == \"|\" && \$1 != \"ID\" { print \$1 }"); do
            xen-livepatch revert "$p" > /dev/null 2>&1; xen-livepatch unload "$p" > /dev/null 2>&1 || echo "cannot unload livepatch $p" >&2
        done
        rm -f /var/log/xen/console/guest-*.log
        for i in $(seq 60); do [ -z "$(xl list | awk "NR > 2")" ] && break; sleep 0.5; done
        for d in $(xl list | awk "NR > 2 && \$1 == \"(null)\" { print \$2 }"); do
            echo "reset: domain $d has no name (a destroy cut short): xl destroy $d" >&2
            xl destroy "$d" 2>&1 | sed "s/^/    /" >&2
        done
        for i in $(seq 20); do [ -z "$(xl list | awk "NR > 2")" ] && break; sleep 0.5; done
        xl list | awk "NR > 2 { print \"left: \" \$0 }" >&2
        [ -z "$(xl list | awk "NR > 2")" ]' ||
        lab_die "reset: host $1 still has guests or livepatches"
}

lab_cmd_reset() {
    local h
    while read -r h; do lab_reset_host "$h"; done < <(lab_hosts_up)
}
