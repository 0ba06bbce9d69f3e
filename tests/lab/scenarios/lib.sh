# tests/lab/scenarios/lib.sh -- helpers for scenario scripts (source it:
# `. "$(dirname "$0")/lib.sh"`).  Not a scenario itself: the runner only
# runs executable NN-name.sh files.  See lib/scenarios.sh for the contract.
set -euo pipefail

LAB=${LAB:-lab}
LAB_LIVEPATCH_DIR=/usr/lib/xenmaint-lab/livepatch

# step TEXT: say what the scenario does next
step() { printf '\n== %s (%s)\n' "$*" "$(date +%T)"; }

# fail TEXT: the scenario failed
fail() {
    printf 'FAILED: %s\n' "$*" >&2
    diagnose >&2 || true
    exit 1
}

# diagnose: what the hosts looked like when the scenario failed
diagnose() {
    local h
    for h in ${LAB_HOSTS:-}; do
        echo "----- host $h: xl list, host state, the agent's last log lines -----"
        "$LAB" exec -n "$h" 'xl list; xenstore-read /tool/xenmaint/host/state /tool/xenmaint/host/reason 2>&1; grep -a xenmaintd /var/log/messages | tail -n 25' 2>&1 || true
    done
}

# skip TEXT: the scenario does not apply (the runner prints TEXT)
skip() { printf '%s\n' "$*"; exit 77; }

# on HOST CMD...: run CMD in HOST's dom0 (no stdin)
on() { local h=$1; shift; "$LAB" exec -n "$h" "$@"; }

# expect_eq WHAT GOT WANT
expect_eq() { [[ $2 == "$3" ]] || fail "$1: got '$2', expected '$3'"; echo "ok: $1 = '$2'"; }

# xen_extra HOST -> the xen_extra line of `xl info` on HOST
xen_extra() { on "$1" "xl info" | sed -n 's/^xen_extra *: *//p'; }

# guest_field NAME KEY -> a key=value field of `lab ticks NAME`
guest_field() { "$LAB" ticks "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# seconds_since T0 -> whole seconds since T0 (date +%s.%N)
seconds_since() { awk -v t0="$1" -v t1="$(date +%s.%N)" 'BEGIN { printf "%.1f", t1 - t0 }'; }

# json EXPR: evaluate python EXPR over the JSON document on stdin (as d)
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# domains HOST -> the domain names on HOST, sorted, on one line
domains() { on "$1" "xl list" | awk 'NR > 1 {print $1}' | sort | xargs; }

# transient HOST -> the NAME--incoming and NAME--migratedaway domains on
# HOST (a migration under way, or one left behind)
transient() { on "$1" "xl list" | awk '/--incoming|--migratedaway/ {print $1}' | xargs; }

# nameless HOST -> the domains on HOST without a name ("(null)" in xl
# list: their xenstore entries gone, the domain not), as (null):DOMID; a
# destroy under way, or one cut short that nobody finished
nameless() { on "$1" "xl list" | awk '$1 == "(null)" {print $1 ":" $2}' | xargs; }

# settled SECONDS: wait that long at most until neither A nor B holds a
# transient or nameless domain, then expect none on either
settled() {
    local i
    for i in $(seq $(($1 * 2))); do
        [[ -z $(transient A) && -z $(transient B) &&
           -z $(nameless A) && -z $(nameless B) ]] && break
        sleep 0.5
    done
    expect_eq "transient domains on A" "$(transient A)" ""
    expect_eq "transient domains on B" "$(transient B)" ""
    expect_eq "nameless domains on A" "$(nameless A)" ""
    expect_eq "nameless domains on B" "$(nameless B)" ""
}

# copies NAME -> on how many of A and B a domain NAME runs
copies() {
    local n=0 h
    for h in A B; do on "$h" "xl domid $1" > /dev/null 2>&1 && n=$((n + 1)); done
    echo "$n"
}

# wait_streaming HOST FILE...: wait (60 s at most) until a guest streams
# into HOST (NAME--incoming there); else show A's FILE... (the output of
# the command that was to start it) and fail
wait_streaming() {
    local h=$1 i
    shift
    for i in $(seq 120); do
        if [[ -n $(transient "$h") ]]; then
            echo "on $h: $(transient "$h")"
            return 0
        fi
        sleep 0.5
    done
    on A "cat $*" >&2 || true
    fail "no migration started within 60 s"
}

# wait_killed HOST FILE...: wait (60 s at most) until agent-killer.sh
# killed the agent on HOST and say where; else show HOST's FILE... and fail
wait_killed() {
    local h=$1 i
    shift
    for i in $(seq 120); do
        if on "$h" 'test -f /run/killed'; then
            echo "agent on $h killed at $(on "$h" 'cat /run/killed')"
            return 0
        fi
        sleep 0.5
    done
    on "$h" "cat $*" >&2 || true
    fail "the agent on $h was not killed within 60 s"
}

# host_state HOST -> the agent's host state (active, drained, ...)
host_state() { on "$1" "xenstore-read /tool/xenmaint/host/state"; }

# agents_reset: every host active again, with no record of guests that
# left it or that a drain shut down (lab reset destroys the guests but
# leaves the agents' state)
agents_reset() {
    local h
    for h in $LAB_HOSTS; do
        on "$h" 'rm -rf /var/lib/xenmaint/away /var/lib/xenmaint/stopped; xl undrain --stay --json > /dev/null'
        expect_eq "state of $h" "$(host_state "$h")" active
    done
}

# guests HOST MEM_MIB NAME...: create ticking guests on HOST, all at
# once (each boots for ~20 s under TCG; together they take little more)
guests() {
    local h=$1 mem=$2 g pids=() rc=0
    shift 2
    for g in "$@"; do "$LAB" guest "$h" "$g" "$mem" & pids+=($!); done
    for g in "${pids[@]}"; do wait "$g" || rc=1; done
    ((rc == 0)) || fail "creating guests on $h failed: $*"
}

# ticking HOST NAME...: every NAME runs on HOST, its tick count goes up
# (one look at all of them, 3 s, another), and its largest tick gap is
# at most ${MAX_GAP:-30} s (a generous bound for a 128 MiB guest
# migrated under TCG)
ticking() {
    local h=$1 max=${MAX_GAP:-30} g t1 t2 gap line
    local -A before after
    shift
    while read -r g line; do before[$g]="$g $line"; done < <("$LAB" ticks "$@")
    sleep 3
    while read -r g line; do after[$g]="$g $line"; done < <("$LAB" ticks "$@")
    for g in "$@"; do
        expect_eq "$g runs on" "$(tick_field "${after[$g]}" host)" "$h"
        t1=$(tick_field "${before[$g]}" ticks); t1=${t1#*..}
        t2=$(tick_field "${after[$g]}" ticks); t2=${t2#*..}
        ((t2 > t1)) || fail "$g does not tick on $h ($t1 -> $t2)"
        gap=$(tick_field "${after[$g]}" max_gap_s)
        echo "ok: $g ticks on $h ($t1 -> $t2), largest tick gap $gap s ($(grep -o 'gap=[^ ]*' <<< "${after[$g]}"))"
        ((gap <= max)) || fail "$g: a tick gap over $max s"
    done
}

# tick_field LINE KEY -> a key=value field of a `lab ticks` line
tick_field() { tr ' ' '\n' <<< "$1" | sed -n "s/^$2=//p"; }
