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
