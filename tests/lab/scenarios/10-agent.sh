#!/bin/bash
# tests/lab/scenarios/10-agent.sh -- the foundation on real Xen hosts:
# xenmaintd runs on every host with its xenstore tree (dom0-only
# permissions), the xl dispatcher runs our subcommands and hands the rest
# to the real xl untouched, `xl maint-status` shows both hosts over the
# mutual-TLS peer link, `xl drain --dry-run --json` prints a plan built
# from the real domain list, malformed requests get error results and
# never a crash, an unreachable peer is reported with its reason, and an
# idle agent does not wake up.
# lab-hosts: 2
# lab-needs: project
. "$(dirname "$0")/lib.sh"

agent_pid() { on "$1" 'cat /run/xenmaintd.pid'; }

check_agents() {
    local h pid
    for h in A B; do
        step "xenmaintd on $h: ready, tree owned by dom0 only"
        pid=$(on "$h" 'xenstore-read /tool/xenmaint/agent/pid') ||
            fail "$h: /tool/xenmaint/agent/pid missing: the agent is not ready"
        on "$h" "kill -0 $pid" || fail "$h: agent pid $pid is not running"
        expect_eq "$h host/state" "$(on "$h" 'xenstore-read /tool/xenmaint/host/state')" active
        expect_eq "$h host/name" "$(on "$h" 'xenstore-read /tool/xenmaint/host/name')" "$h"
        local perms
        perms=$(on "$h" 'xenstore-ls -p /tool/xenmaint | grep -v "(n0)" || true')
        [[ -z $perms ]] || fail "$h: keys under /tool/xenmaint not dom0-only: $perms"
        echo "ok: every key under /tool/xenmaint is (n0)"
        on "$h" 'xenmaintd -n' | grep -qx 'configuration OK' ||
            fail "$h: xenmaintd -n does not say configuration OK"
    done
}

check_dispatcher() {
    step "dispatcher: other xl commands reach the real xl untouched"
    local ours real rc
    # state flags and CPU time move between two calls: compare the rest
    ours=$(on A "xl list | awk '{print \$1, \$2, \$3, \$4}'") ||
        fail "xl list failed through the dispatcher"
    real=$(on A "/usr/sbin/xl list | awk '{print \$1, \$2, \$3, \$4}'")
    expect_eq "xl list output (but state and CPU time)" "$ours" "$real"
    rc=0; on A 'xl domid no-such-guest' > /dev/null 2>&1 || rc=$?
    local real_rc=0; on A '/usr/sbin/xl domid no-such-guest' > /dev/null 2>&1 || real_rc=$?
    expect_eq "exit status of a failing xl command" "$rc" "$real_rc"
    ((rc != 0)) || fail "xl domid of a missing guest succeeded"
    on A 'xl help' > "$TMP/help" 2>&1 || true
    grep -q '^ *drain' "$TMP/help" || fail "xl help does not list drain"
    grep -q '^ *create' "$TMP/help" || fail "xl help lost the real xl's commands"
    echo "ok: xl help lists xl's commands and ours"
    rc=0; on A 'xl drain --bogus' > /dev/null 2>&1 || rc=$?
    expect_eq "exit status of a usage error" "$rc" 2
}

check_status() {
    step "xl maint-status --json on A: both hosts, A's guests"
    on A 'xl maint-status --json' > "$TMP/status.json" || fail "xl maint-status failed"
    cat "$TMP/status.json"; echo
    expect_eq "hosts" "$(json '",".join(h["name"] for h in d["hosts"])' < "$TMP/status.json")" "A,B"
    expect_eq "B reachable" "$(json 'd["hosts"][1]["reachable"]' < "$TMP/status.json")" True
    expect_eq "A's guests" "$(json '",".join(sorted(g["name"] for g in d["hosts"][0]["guests"]))' < "$TMP/status.json")" "lab1,lab2"
    local bid; bid=$(json 'd["hosts"][0]["build_id"]' < "$TMP/status.json")
    [[ $bid =~ ^[0-9a-f]{40}$ ]] || fail "A's build-id '$bid' is not a 40-digit hex id"
    echo "ok: A's build-id $bid"
    on A 'xl maint-status'
}

check_plan() {
    step "xl drain --dry-run --json on A: a plan from the real domain list"
    local rc=0
    on A 'xl drain --dry-run --json' > "$TMP/plan.json" || rc=$?
    cat "$TMP/plan.json"; echo
    expect_eq "exit status (every guest can move)" "$rc" 0
    expect_eq "moves" "$(json '",".join(sorted(m["guest"]+"->"+m["to"] for m in d["moves"]))' < "$TMP/plan.json")" "lab1->B,lab2->B"
    expect_eq "blocked" "$(json 'len(d["blocked"])' < "$TMP/plan.json")" 0
    local domid; domid=$(on A 'xl domid lab1')
    expect_eq "lab1's domid in the plan" \
        "$(json '[m["domid"] for m in d["moves"] if m["guest"]=="lab1"][0]' < "$TMP/plan.json")" "$domid"
    step "xl drain -n (xl's global dry-run flag), human output"
    on A 'xl -N drain' || fail "xl -N drain failed"
    step "nothing moved"
    on A 'xl domid lab1 && xl domid lab2' > /dev/null || fail "a guest left A during a dry run"
    expect_eq "A's state" "$(on A 'xenstore-read /tool/xenmaint/host/state')" active
    step "contradictory options refused before the agent is asked"
    rc=0; on A 'xl drain --skip-blocked --shutdown-blocked' || rc=$?
    expect_eq "xl drain --skip-blocked --shutdown-blocked exit status" "$rc" 2
    expect_eq "A's state" "$(on A 'xenstore-read /tool/xenmaint/host/state')" active
}

check_malformed() {
    step "malformed requests written straight into xenstore"
    local pid; pid=$(agent_pid A)
    on A "xenstore-write /tool/xenmaint/request/junk1 'not json at all'"
    on A "xenstore-write /tool/xenmaint/request/junk2 '{\"version\":1,\"op\":\"rm -rf\"}'"
    on A "xenstore-write /tool/xenmaint/request/junk3 '{\"version\":1,\"op\":\"drain\",\"parallel\":-4}'"
    local i s
    for i in 1 2 3; do
        for _ in $(seq 50); do
            s=$(on A "xenstore-read /tool/xenmaint/job/junk$i/state 2>/dev/null" || true)
            [[ $s == failed || $s == done ]] && break
            sleep 0.2
        done
        expect_eq "junk$i state" "$s" failed
        echo "   error: $(on A "xenstore-read /tool/xenmaint/job/junk$i/error")"
    done
    on A "kill -0 $pid" || fail "the agent died on a malformed request"
    expect_eq "agent pid unchanged" "$(agent_pid A)" "$pid"
}

check_peer_down() {
    step "agent on B stopped: A reports B unreachable, with the reason"
    on B 'kill $(cat /run/xenmaintd.pid)'
    for _ in $(seq 50); do on B 'xenstore-exists /tool/xenmaint/agent/pid' || break; sleep 0.2; done
    on A 'xl maint-status --json' > "$TMP/down.json" || true
    expect_eq "B reachable" "$(json 'd["hosts"][1]["reachable"]' < "$TMP/down.json")" False
    echo "   B: $(json 'd["hosts"][1]["error"]' < "$TMP/down.json")"
    local rc=0
    on A 'xl drain --dry-run --json' > "$TMP/plan-down.json" || rc=$?
    expect_eq "dry run with no target: exit status 4 (blocked)" "$rc" 4
    expect_eq "reasons" "$(json '",".join(sorted(set(r for b in d["blocked"] for r in b["reasons"])))' < "$TMP/plan-down.json")" no-target
    step "xl on B with no agent: exit status 3, said clearly"
    rc=0; on B 'xl maint-status' > "$TMP/noagent" 2>&1 || rc=$?
    cat "$TMP/noagent"
    expect_eq "exit status" "$rc" 3
    "$LAB" agent-restart B
}

check_idle() {
    step "an idle agent does not wake up"
    local pid before after
    pid=$(agent_pid A)
    before=$(on A "awk '/ctxt_switches/ {n += \$2} END {print n}' /proc/$pid/status")
    sleep 10
    after=$(on A "awk '/ctxt_switches/ {n += \$2} END {print n}' /proc/$pid/status")
    echo "context switches of xenmaintd over 10 s idle: $((after - before))"
    ((after - before == 0)) || fail "the idle agent woke up $((after - before)) times in 10 s"
}

main() {
    TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
    check_agents
    step "two ticking guests on A"
    guests A 128 lab1 lab2
    check_dispatcher
    check_status
    check_plan
    check_malformed
    check_idle
    check_peer_down
}
main
