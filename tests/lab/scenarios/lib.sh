# tests/lab/scenarios/lib.sh -- helpers for scenario scripts (source it:
# `. "$(dirname "$0")/lib.sh"`).  Not a scenario itself: the runner only
# runs executable NN-name.sh files.  See lib/scenarios.sh for the contract.
set -euo pipefail

LAB=${LAB:-lab}
LAB_LIVEPATCH_DIR=/usr/lib/xenmaint-lab/livepatch

# step TEXT: say what the scenario does next
step() { printf '\n== %s (%s)\n' "$*" "$(date +%T)"; }

# fail TEXT: the scenario failed
fail() { printf 'FAILED: %s\n' "$*" >&2; exit 1; }

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

# host_state HOST -> the agent's host state (active, drained, ...)
host_state() { on "$1" "xenstore-read /tool/xenmaint/host/state"; }

# agents_reset: every host active again, with no record of guests that
# left it (lab reset destroys the guests but leaves the agents' state)
agents_reset() {
    local h
    for h in $LAB_HOSTS; do
        on "$h" 'rm -f /var/lib/xenmaint/away; xl undrain --stay --json > /dev/null'
        expect_eq "state of $h" "$(host_state "$h")" active
    done
}

# ticking NAME HOST: NAME runs on HOST, its tick count goes up, and its
# largest tick gap is at most ${MAX_GAP:-30} s (a generous bound for a
# 128 MiB guest migrated under TCG)
ticking() {
    local g=$1 h=$2 t1 t2 max=${MAX_GAP:-30}
    expect_eq "$g runs on" "$(guest_field "$g" host)" "$h"
    t1=$(guest_field "$g" ticks); t1=${t1#*..}
    sleep 3
    t2=$(guest_field "$g" ticks); t2=${t2#*..}
    ((t2 > t1)) || fail "$g does not tick on $h ($t1 -> $t2)"
    echo "ok: $g ticks on $h ($t1 -> $t2), largest tick gap $(guest_field "$g" max_gap_s) s ($("$LAB" ticks "$g" | grep -o 'gap=[^ ]*'))"
    (($(guest_field "$g" max_gap_s) <= max)) || fail "$g: a tick gap over $max s"
}
