# tests/lab/lib/project.sh -- the project inside the lab: build it out of
# tree from the working tree at every `lab up` (never a stale image),
# pack its install as a cpio appended to dom0's initrd, then configure
# and start its agent on every host (`lab agent-restart` too).
#
# Build: <repo>/build/lab, `autoreconf -fi` when configure is missing or
# older than configure.ac, ../../configure --prefix=/usr/local
# --sysconfdir=/etc --localstatedir=/var, make, make install into a stage
# ($LAB_RUN/stage) packed as $LAB_RUN/project.cpio.
# Agent: /etc/xenmaint/xenmaint.conf (xl.cfg syntax) naming the host, its
# listen address and every other host as a peer; with tools/xenmaint-pki a
# pool CA made once per `lab up` ($LAB_RUN/pki) and each host's key and
# certificate in /etc/xenmaint/pki.  Then `xenmaintd -n` (must say
# "configuration OK"), `xenmaintd`, and wait for its xenstore pid key.

LAB_BUILD_DIR=${LAB_BUILD_DIR:-$REPO_DIR/build/lab}

lab_project_build() {
    local log=$LAB_RUN/project-build.log t0 stage=$LAB_RUN/stage
    t0=$(lab_now)
    : > "$log"
    lab_say "building the project from the working tree in $LAB_BUILD_DIR (log: $log)"
    if ! lab_project_build_steps "$stage" >> "$log" 2>&1; then
        tail -n 30 "$log" >&2
        lab_die "the project does not build (see above and $log); 'lab up --no-project' boots the baseline without it"
    fi
    lab_pack_cpio "$stage" > "$LAB_RUN/project.cpio"
    lab_say "project built and staged in $(lab_since "$t0") s ($(du -h "$LAB_RUN/project.cpio" | cut -f1) cpio: $(cd "$stage" && find . -type f -path '*bin/*' | tr '\n' ' '))"
}

# lab_project_build_steps STAGE: configure, make and install into STAGE
# (a subshell: it changes directory; every step is checked explicitly as
# `set -e` does not apply inside an `if` condition)
lab_project_build_steps() (
    stage=$1
    cd "$REPO_DIR" || exit 1
    if [[ ! -x configure || configure.ac -nt configure ]]; then
        echo "== autoreconf -fi"
        autoreconf -fi || exit 1
    fi
    mkdir -p "$LAB_BUILD_DIR" && cd "$LAB_BUILD_DIR" || exit 1
    if [[ ! -f config.status || "$REPO_DIR/configure" -nt config.status ]]; then
        echo "== configure"
        "$REPO_DIR/configure" --prefix=/usr/local --sysconfdir=/etc --localstatedir=/var || exit 1
    fi
    echo "== make"
    make -j"$(nproc)" || exit 1
    echo "== make install DESTDIR=$stage"
    rm -rf "$stage"
    make install DESTDIR="$stage" || exit 1
)

# lab_project_has PATH: true when the staged install has PATH (e.g. sbin/xenmaintd)
lab_project_has() { [[ $(cat "$LAB_RUN/project" 2>/dev/null) == yes && -e $LAB_RUN/stage/usr/local/$1 ]]; }

# lab_agent_conf HOST -> HOST's /etc/xenmaint/xenmaint.conf
lab_agent_conf() {
    local h=$1 o peers=() tls=$2
    while read -r o; do
        [[ $o == "$h" ]] || peers+=("\"$o=$(lab_host_ip "$o"):$LAB_AGENT_PORT\"")
    done < <(lab_hosts_up)
    echo "# written by the xenmaint lab (tests/lab/lib/project.sh)"
    echo "host_name = \"$h\""
    echo "listen_address = \"$(lab_host_ip "$h")\""
    echo "listen_port = $LAB_AGENT_PORT"
    echo "peers = [ $(IFS=,; echo "${peers[*]}" | sed 's/,/, /g') ]"
    echo "state_dir = \"/var/lib/xenmaint\""
    if [[ $tls == yes ]]; then
        echo 'tls_ca = "/etc/xenmaint/pki/ca.crt"'
        echo 'tls_cert = "/etc/xenmaint/pki/host.crt"'
        echo 'tls_key = "/etc/xenmaint/pki/host.key"'
    fi
}

# lab_pki_make HOST...: a pool CA and one certificate per host in $LAB_RUN/pki
lab_pki_make() {
    local pki=$LAB_RUN/pki h tool=$REPO_DIR/tools/xenmaint-pki
    rm -rf "$pki"
    "$tool" init "$pki" > "$LAB_RUN/pki.log" 2>&1 ||
        { cat "$LAB_RUN/pki.log" >&2; lab_die "tools/xenmaint-pki init failed"; }
    for h in "$@"; do
        "$tool" host "$pki" "$h" >> "$LAB_RUN/pki.log" 2>&1 ||
            { cat "$LAB_RUN/pki.log" >&2; lab_die "tools/xenmaint-pki host $h failed"; }
        [[ -f $pki/$h.crt && -f $pki/$h.key ]] || lab_die "xenmaint-pki made no $pki/$h.crt/.key"
    done
}

# lab_agent_start HOST: config check, start, wait for the xenstore pid key
lab_agent_start() {
    local h=$1 out
    out=$(lab_exec -n "$h" "xenmaintd -n 2>&1") ||
        { echo "$out" >&2; lab_die "host $h: 'xenmaintd -n' rejected the configuration"; }
    grep -q "configuration OK" <<< "$out" ||
        { echo "$out" >&2; lab_die "host $h: 'xenmaintd -n' did not say 'configuration OK'"; }
    lab_exec -n "$h" "xenmaintd" || lab_die "host $h: xenmaintd failed to start (lab exec $h tail /var/log/messages)"
    lab_exec -n "$h" 'for i in $(seq 60); do xenstore-read /tool/xenmaint/agent/pid > /dev/null 2>&1 && exit 0; sleep 0.5; done; exit 1' ||
        { lab_exec -n "$h" "tail -n 20 /var/log/messages" >&2 || true
          lab_die "host $h: xenmaintd did not publish /tool/xenmaint/agent/pid within 30 s"; }
    lab_say "host $h: xenmaintd running (pid $(lab_exec -n "$h" "xenstore-read /tool/xenmaint/agent/pid"))"
}

# lab_agent_setup HOST...: write config (+ PKI) and start the agent on each host
lab_agent_setup() {
    local h tls=no
    if ! lab_project_has sbin/xenmaintd; then
        lab_say "note: xenmaintd is not installed by the project yet: agent not configured"
        return 0
    fi
    if [[ -x $REPO_DIR/tools/xenmaint-pki ]]; then
        lab_pki_make "$@"
        tls=yes
    fi
    for h in "$@"; do
        lab_exec -n "$h" "mkdir -p /etc/xenmaint/pki /var/lib/xenmaint"
        lab_agent_conf "$h" "$tls" | lab_exec "$h" "cat > /etc/xenmaint/xenmaint.conf"
        if [[ $tls == yes ]]; then
            lab_exec "$h" "cat > /etc/xenmaint/pki/ca.crt" < "$LAB_RUN/pki/ca.crt"
            lab_exec "$h" "cat > /etc/xenmaint/pki/host.crt" < "$LAB_RUN/pki/$h.crt"
            lab_exec "$h" "umask 077; cat > /etc/xenmaint/pki/host.key" < "$LAB_RUN/pki/$h.key"
        fi
        lab_agent_start "$h"
    done
}

lab_cmd_agent_restart() {
    (($# == 1)) || lab_die "usage: lab agent-restart HOST"
    local h=$1
    lab_project_has sbin/xenmaintd || lab_die "xenmaintd is not installed on the lab hosts"
    lab_exec -n "$h" 'p=$(cat /run/xenmaintd.pid 2>/dev/null) || exit 0
        kill "$p" 2>/dev/null || exit 0
        for i in $(seq 50); do kill -0 "$p" 2>/dev/null || exit 0; sleep 0.2; done
        echo "xenmaintd (pid $p) did not stop in 10 s: killing it" >&2; kill -9 "$p"' ||
        lab_die "host $h: could not stop xenmaintd"
    lab_agent_start "$h"
}
