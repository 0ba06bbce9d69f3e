#!/bin/bash
# tests/lab/scenarios/00-baseline.sh -- the lab itself works, without the
# project: a raw `xl migrate` of a ticking PV guest from A to B over the
# lab link (socat + `xl migrate-receive`), the guest still ticking on B
# with its largest tick gap printed; then a real hypervisor livepatch on
# B: `xen-livepatch load xen_hello_world` makes `xl info` show
# "xen_extra : Hello World", revert + unload restore the original value.
# lab-hosts: 2
. "$(dirname "$0")/lib.sh"

GUEST=base1
MAX_GAP=30      # seconds: generous bound for a 128 MiB guest under TCG

migrate_a_to_b() {
    step "start 'xl migrate-receive' behind socat on B (192.0.2.2:8002)"
    on B 'setsid socat TCP-LISTEN:8002,reuseaddr EXEC:"xl migrate-receive" > /run/recv.log 2>&1 < /dev/null & echo $! > /run/recv.pid'
    on B 'for i in $(seq 50); do ss -ltn | grep -q ":8002 " && exit 0; sleep 0.2; done; exit 1' ||
        fail "socat on B does not listen on port 8002"
    step "xl migrate $GUEST A -> B"
    local t0; t0=$(date +%s.%N)
    on A "xl migrate -s '' $GUEST 'socat - TCP:192.0.2.2:8002'" ||
        { on B 'cat /run/recv.log' || true; fail "xl migrate $GUEST A -> B failed"; }
    echo "migrated in $(seconds_since "$t0") s"
}

check_guest_on_b() {
    step "the guest left A and runs on B"
    if on A "xl domid $GUEST" > /dev/null 2>&1; then fail "$GUEST is still on A"; fi
    on B "xl domid $GUEST" > /dev/null || fail "$GUEST is not on B"
    local last1 last2
    last1=$(guest_field "$GUEST" ticks); last1=${last1#*..}
    sleep 4
    "$LAB" ticks "$GUEST"
    last2=$(guest_field "$GUEST" ticks); last2=${last2#*..}
    expect_eq "host of $GUEST" "$(guest_field "$GUEST" host)" B
    ((last2 > last1)) || fail "$GUEST does not tick on B (last tick $last1, 4 s later $last2)"
    echo "ok: $GUEST ticks on B ($last1 -> $last2 in 4 s)"
    local gap; gap=$(guest_field "$GUEST" max_gap_s)
    echo "largest tick gap across the migration: ${gap} s (1 s resolution)"
    ((gap <= MAX_GAP)) || fail "largest tick gap $gap s exceeds $MAX_GAP s"
}

livepatch_hello_world() {
    local orig
    orig=$(xen_extra B)
    step "livepatch on B: load xen_hello_world (xen_extra is '$orig')"
    [[ $orig != "Hello World" ]] || fail "xen_extra is already 'Hello World' before the patch"
    on B "xen-livepatch load $LAB_LIVEPATCH_DIR/xen_hello_world.livepatch" || fail "xen-livepatch load failed"
    on B "xen-livepatch list"
    expect_eq "xen_extra with xen_hello_world applied" "$(xen_extra B)" "Hello World"
    step "revert and unload xen_hello_world"
    on B "xen-livepatch revert xen_hello_world && xen-livepatch unload xen_hello_world" ||
        fail "xen-livepatch revert/unload failed"
    expect_eq "xen_extra after unload" "$(xen_extra B)" "$orig"
    if on B "xen-livepatch list" | grep -q xen_hello_world; then fail "xen_hello_world still listed"; fi
}

main() {
    step "create ticking guest $GUEST on A"
    "$LAB" guest A "$GUEST" 128
    migrate_a_to_b
    check_guest_on_b
    livepatch_hello_world
    on B "xl destroy $GUEST"
}
main
