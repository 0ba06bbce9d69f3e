#!/bin/bash
# tests/lab/scenarios/30-drain.sh -- drain and undrain between two real
# Xen hosts through the agents: three ticking guests on A are drained to
# B by `xl drain` (agent to agent over mutual TLS, two at a time, with a
# maintenance notice), A ends empty and "drained", every guest still
# ticks on B (largest tick gap reported); B cannot drain onto a drained
# A (refused, B left active); `xl undrain` brings all three home; and a
# drain that cannot fit (a big paused domain fills B) is refused with the
# blocker named and nothing moved.
# lab-hosts: 2
# lab-needs: project
. "$(dirname "$0")/lib.sh"

GUESTS="g1 g2 g3"
MAX_GAP=30      # seconds: generous bound for a 128 MiB guest under TCG

# last_json: the last line of a JSON-lines output (the result document)
last_json() { tail -n 1; }

step "both hosts active, no records of earlier drains"
agents_reset

step "three ticking guests on A"
guests A 128 $GUESTS

step "xl drain --dry-run plans all three onto B"
plan=$(on A 'xl drain --dry-run --json')
expect_eq "planned moves" "$(json 'len(d["moves"])' <<< "$plan")" 3
expect_eq "nothing blocked" "$(json 'len(d["blocked"])' <<< "$plan")" 0

step "xl drain --parallel 2 --notice 2 on A"
t0=$(date +%s.%N)
rc=0
out=$(on A 'xl drain --parallel 2 --notice 2 --json') || rc=$?
echo "drained in $(seconds_since "$t0") s"
res=$(last_json <<< "$out")
json '"\n".join("%s -> %s: %s %s bytes %.1f s %s" % (m["guest"], m["to"], m["state"], m["bytes"], m["seconds"], m["why"]) for m in d["moves"])' <<< "$res"
expect_eq "xl drain exit status" "$rc" 0
expect_eq "moves done" "$(json 'sum(m["state"] == "done" for m in d["moves"])' <<< "$res")" 3
expect_eq "notice time" "$(json 'd["notice"]["seconds"]' <<< "$res")" 2
expect_eq "domains on A" "$(domains A)" "Domain-0"
expect_eq "domains on B" "$(domains B)" "Domain-0 g1 g2 g3"
expect_eq "state of A" "$(host_state A)" drained
ticking B $GUESTS

step "B cannot drain onto the drained A: refused, nothing moves"
rc=0
out=$(on B 'xl drain --json') || rc=$?
res=$(last_json <<< "$out")
expect_eq "xl drain on B exit status" "$rc" 4
expect_eq "refused" "$(json 'd.get("refused", False)' <<< "$res")" True
json '"\n".join("blocked: %s: %s" % (b["guest"], ",".join(b["reasons"])) for b in d["blocked"])' <<< "$res"
expect_eq "blocked guests" "$(json 'len(d["blocked"])' <<< "$res")" 3
expect_eq "state of B" "$(host_state B)" active
expect_eq "domains on B" "$(domains B)" "Domain-0 g1 g2 g3"

step "xl undrain on A brings the three home"
t0=$(date +%s.%N)
rc=0
out=$(on A 'xl undrain --json') || rc=$?
echo "undrained in $(seconds_since "$t0") s"
res=$(last_json <<< "$out")
json '"\n".join("%s <- %s: %s %s" % (m["guest"], m["from"], m["state"], m["why"]) for m in d["moves"])' <<< "$res"
expect_eq "xl undrain exit status" "$rc" 0
expect_eq "moves done" "$(json 'sum(m["state"] == "done" for m in d["moves"])' <<< "$res")" 3
expect_eq "state of A" "$(host_state A)" active
expect_eq "domains on A" "$(domains A)" "Domain-0 g1 g2 g3"
expect_eq "domains on B" "$(domains B)" "Domain-0"
ticking A $GUESTS

step "a drain that cannot fit: a 900 MiB domain (paused) fills B"
"$LAB" guest --paused B big 900
rc=0
out=$(on A 'xl drain --json') || rc=$?
res=$(last_json <<< "$out")
json '"\n".join("blocked: %s: %s -- %s" % (b["guest"], ",".join(b["reasons"]), b["detail"]) for b in d["blocked"])' <<< "$res"
expect_eq "xl drain exit status" "$rc" 4
expect_eq "refused" "$(json 'd.get("refused", False)' <<< "$res")" True
[[ $(json 'any("memory" in ",".join(b["reasons"]) for b in d["blocked"])' <<< "$res") == True ]] ||
    fail "no blocker names memory"
expect_eq "state of A" "$(host_state A)" active
expect_eq "domains on A" "$(domains A)" "Domain-0 g1 g2 g3"
ticking A $GUESTS
