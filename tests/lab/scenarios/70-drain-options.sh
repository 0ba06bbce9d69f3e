#!/bin/bash
# tests/lab/scenarios/70-drain-options.sh -- Ctrl-C and --shutdown-blocked
# on real hosts.  A holds g1, g2 (128 MiB) and g3 (500 MiB); an 800 MiB
# domain (paused: it only holds memory) fills B, so g3 cannot move.  `xl
# drain --parallel 1 --skip-blocked --compress none` is interrupted (SIGINT, as Ctrl-C)
# while g1 streams to B: xl says that running migrations finish or roll
# back and that no new one starts; a migration the cancel caught rolls
# back saying so; every guest runs exactly once and ticks; no transient
# domain is left.  Then `xl drain --shutdown-blocked` empties A: the
# movable guests move, g3 powers off cleanly (its console says so) and A
# is drained.  `xl undrain` brings g1 and g2 home and starts g3 again on
# A, ticking anew.
# lab-hosts: 2
# lab-needs: project
. "$(dirname "$0")/lib.sh"

step "both hosts active, no records of earlier drains"
agents_reset

step "g1, g2 (128 MiB) and g3 (500 MiB) on A; an 800 MiB domain (paused) fills B"
"$LAB" guest --paused B fill 800 &
fill=$!
guests A 128 g1 g2
"$LAB" guest A g3 500
wait "$fill" || fail "the guest that fills B was not created"

step "xl drain --parallel 1 --skip-blocked --compress none on A, in the background"
"$LAB" exec A "cat > /run/d70.sh" <<'SH'
#!/bin/sh
# xl's own pid in /run/d70.pid (exec), its status in /run/d70.rc
sh -c 'echo $$ > /run/d70.pid; exec xl drain --parallel 1 --skip-blocked --compress none --json' > /run/d70.out 2> /run/d70.err
echo $? > /run/d70.rc
SH
on A 'rm -f /run/d70.pid /run/d70.rc; setsid sh /run/d70.sh < /dev/null > /dev/null 2>&1 &'

step "Ctrl-C (SIGINT to xl) while the first guest streams to B"
wait_streaming B /run/d70.out /run/d70.err
on A 'kill -INT "$(cat /run/d70.pid)"'
for i in $(seq 240); do
    on A 'test -f /run/d70.rc' && break
    sleep 0.5
done
on A 'test -f /run/d70.rc' || fail "xl drain did not end within 120 s of Ctrl-C"
rc=$(on A 'cat /run/d70.rc')
on A 'cat /run/d70.err'
res=$(on A 'tail -n 1 /run/d70.out')
json '"\n".join("%s -> %s: %s %s" % (m["guest"], m["to"], m["state"], m["why"]) for m in d["moves"])' <<< "$res"
on A 'grep -q "no new ones will start" /run/d70.err' || fail "xl did not say what Ctrl-C does"
[[ $rc == 1 || $rc == 6 ]] || fail "xl drain exit status $rc after Ctrl-C (1: nothing moved, 6: some moved)"
echo "ok: xl drain exit status $rc"
expect_eq "moves that did not happen" "$(json 'sum(m["state"] != "done" for m in d["moves"]) >= 1' <<< "$res")" True
expect_eq "each ended done, rolled back by the cancel, or never started" "$(json 'all(m["state"] == "done" or (m["state"] == "stayed" and m["why"] == "cancelled by the operator") or (m["state"] == "cancelled" and m["why"] == "not started: cancelled") for m in d["moves"])' <<< "$res")" True
expect_eq "g3 skipped" "$(json '[b["action"] for b in d["blocked"] if b["guest"] == "g3"][0]' <<< "$res")" skipped
expect_eq "state of A" "$(host_state A)" cordoned

step "after Ctrl-C: every guest runs exactly once, and ticks"
settled 60
for g in g1 g2 g3; do
    expect_eq "copies of $g" "$(copies "$g")" 1
done
ticking "$(guest_field g1 host)" g1
ticking "$(guest_field g2 host)" g2
ticking A g3

step "xl drain --shutdown-blocked: g1, g2 move, g3 powers off"
rc=0
out=$(on A 'xl drain --shutdown-blocked --json') || rc=$?
res=$(tail -n 1 <<< "$out")
json '"\n".join("%s -> %s: %s %s" % (m["guest"], m["to"], m["state"], m["why"]) for m in d["moves"])' <<< "$res"
json '"\n".join("blocked %s (%s): %s %s %s" % (b["guest"], ",".join(b["reasons"]), b["action"], b["state"], b["why"]) for b in d["blocked"])' <<< "$res"
expect_eq "xl drain exit status" "$rc" 0
expect_eq "g3 shut down" "$(json '[b["state"] for b in d["blocked"] if b["guest"] == "g3"][0]' <<< "$res")" shut-down
expect_eq "domains on A" "$(domains A)" "Domain-0"
expect_eq "domains on B" "$(domains B)" "Domain-0 fill g1 g2"
expect_eq "state of A" "$(host_state A)" drained
on A 'grep -q "lab guest: powering off" /var/log/xen/console/guest-g3.log' ||
    fail "g3's console does not show a clean poweroff"
echo "ok: g3 powered off cleanly (its console: lab guest: powering off)"
on A 'ls /var/lib/xenmaint/stopped'

step "xl undrain: g1, g2 home, g3 started again on A"
rc=0
out=$(on A 'xl undrain --json') || rc=$?
res=$(tail -n 1 <<< "$out")
json '"\n".join("%s <- %s: %s %s" % (m["guest"], m["from"], m["state"], m["why"]) for m in d["moves"])' <<< "$res"
json '"\n".join("started %s: %s %s" % (s["guest"], s["state"], s["why"]) for s in d["started"])' <<< "$res"
expect_eq "xl undrain exit status" "$rc" 0
expect_eq "g3 started" "$(json '[s["state"] for s in d["started"] if s["guest"] == "g3"][0]' <<< "$res")" running
expect_eq "domains on A" "$(domains A)" "Domain-0 g1 g2 g3"
expect_eq "domains on B" "$(domains B)" "Domain-0 fill"
expect_eq "records of stopped guests left" "$(on A 'ls /var/lib/xenmaint/stopped | wc -l')" 0
ticking A g1 g2
# g3 booted anew: count the ticks its console shows after the poweroff
# (its tick numbers start again at 1, so lab ticks cannot tell)
after_poweroff() { on A "sed -n '/lab guest: powering off/,\$p' /var/log/xen/console/guest-g3.log | grep -c 'tick '" || true; }
t1=$(after_poweroff)
sleep 3
t2=$(after_poweroff)
((t2 > t1)) || fail "g3 does not tick after its restart ($t1 -> $t2 ticks since the poweroff)"
echo "ok: g3 ticks again on A ($t1 -> $t2 ticks since its poweroff)"
expect_eq "g3 runs on" "$(guest_field g3 host)" A
