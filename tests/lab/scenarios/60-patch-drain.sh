#!/bin/bash
# tests/lab/scenarios/60-patch-drain.sh -- `xl patch apply` as one job on
# real hosts: two ticking guests on A leave for B, xen_hello_world is
# applied and verified (the manifest's verify command reads `xl info`),
# the guests come home still ticking; a dry run changes nothing; a
# chain applied in dependency order is replaced by xen_replace_world;
# a verification that fails reverts the payload and leaves the host
# drained and cordoned with the reason; the agent killed between the
# upload and the apply (XENMAINT_CRASH_AT) resumes the flow when it
# starts again and applies once; a manifest without a payload for this
# hypervisor drains the host and leaves it reboot-required.
# lab-hosts: 2
# lab-needs: project
. "$(dirname "$0")/lib.sh"

D=$LAB_LIVEPATCH_DIR
MAX_GAP=30

# loaded HOST -> "name:state,..." of the loaded payloads
loaded() {
    on "$1" 'xl patch list --json' |
        json '",".join(p["name"] + ":" + p["state"] for p in d["livepatches"])'
}

# manifest HOST NAME PAYLOAD XEN_ID [REPLACE [EXPECT]]: /root/xsa/NAME.json
manifest() {
    local h=$1 name=$2 p=$3 xen=$4 replace=${5:-false} expect=${6:-Hello World}
    local sha
    on "$h" "mkdir -p /root/xsa && cp $D/$p.livepatch /root/xsa/"
    sha=$(on "$h" "sha256sum /root/xsa/$p.livepatch | cut -d' ' -f1")
    "$LAB" exec "$h" "cat > /root/xsa/$name.json" <<JSON
{ "version": 1, "xsa": "XSA-901", "title": "lab: $p",
  "payloads": [ { "name": "$p", "file": "$p.livepatch", "sha256": "$sha",
                  "xen_build_ids": ["$xen"], "replace": $replace } ],
  "no_payload": "reboot-required",
  "verify": { "command": "xl info | grep xen_extra", "expect": "$expect" } }
JSON
}

# apply HOST ARGS...: xl patch apply --json; sets $rc (exit status) and
# $res (the result document: the last JSON line)
apply() {
    local h=$1; shift
    rc=0
    on "$h" "xl patch apply --json $*" > "$TMP/out" || rc=$?
    res=$(tail -n 1 "$TMP/out")
}

main() {
    local xen_id res orig
    step "both hosts active; two ticking guests on A"
    agents_reset
    guests A 128 pd1 pd2
    xen_id=$(on A 'xl maint-status --json' | json 'd["hosts"][0]["build_id"]')
    orig=$(xen_extra A)
    manifest A xsa-901 xen_hello_world "$xen_id"

    step "xl patch apply --dry-run: pre-flight and the drain plan, nothing changed"
    apply A --dry-run /root/xsa/xsa-901.json
    echo "$res"
    expect_eq "dry run: exit status" "$rc" 0
    expect_eq "dry run: state" "$(json 'd["state"]' <<<"$res")" dry-run
    expect_eq "dry run: planned moves" "$(json 'len(d["drain"]["moves"])' <<<"$res")" 2
    expect_eq "dry run: loaded" "$(loaded A)" ""
    expect_eq "dry run: guests on A" "$(domains A)" "Domain-0 pd1 pd2"
    expect_eq "dry run: state of A" "$(host_state A)" active

    step "xl patch apply MANIFEST: drain, pre-flight, upload, apply, verify, undrain"
    # Each guest acknowledges its maintenance notice: the lab's guests
    # have no xenstore tools, so dom0 writes the guest's own ack key for
    # it when the notice appears (bounded: 120 s at most).
    on A 'nohup sh -c "for i in \$(seq 240); do
            for d in \$(xl domid pd1 2>/dev/null) \$(xl domid pd2 2>/dev/null); do
              xenstore-read /local/domain/\$d/xenmaint/notice > /dev/null 2>&1 &&
                xenstore-write /local/domain/\$d/data/xenmaint-ack ack
            done; sleep 0.5; done" > /dev/null 2>&1 < /dev/null &'
    local t0; t0=$(date +%s.%N)
    apply A --notice 120 /root/xsa/xsa-901.json
    echo "$res" | python3 -m json.tool || true
    echo "the whole flow took $(seconds_since "$t0") s"
    expect_eq "apply: exit status" "$rc" 0
    expect_eq "apply: state" "$(json 'd["state"]' <<<"$res")" applied
    expect_eq "apply: steps" "$(json '",".join(s["step"] + ":" + s["result"] for s in d["steps"])' <<<"$res")" \
        "preflight:ok,drain:ok,preflight:ok,upload:ok,apply:ok,verify:ok,undrain:ok"
    expect_eq "apply: guests drained" "$(json '",".join(sorted(m["guest"] + ":" + m["state"] for m in d["drain"]["moves"]))' <<<"$res")" \
        "pd1:done,pd2:done"
    expect_eq "apply: verify command matched" "$(json 'd["verify"]["matched"]' <<<"$res")" True
    expect_eq "apply: notices acknowledged" "$(json '",".join(sorted(d["drain"]["notice"]["acked"]))' <<<"$res")" "pd1,pd2"
    (($(json 'int(d["drain"]["notice"]["waited_s"])' <<<"$res") < 60)) ||
        fail "the drain waited the whole notice although both guests acknowledged"
    expect_eq "xen_extra on A" "$(xen_extra A)" "Hello World"
    expect_eq "loaded on A" "$(loaded A)" "xen_hello_world:applied"
    grep -q '"event": *"step"' "$TMP/out" || fail "no step event in the JSON output"
    on A 'grep "audit: livepatch apply+verify xsa=XSA-901 payload=xen_hello_world" /var/log/messages' ||
        fail "no audit line for the apply"
    expect_eq "state of A" "$(host_state A)" active
    ticking A pd1 pd2

    step "a chain in dependency order, then xen_replace_world replaces it"
    on A "xl patch apply --in-place $D/xen_bye_world.livepatch" || fail "xen_bye_world refused on top of hello"
    expect_eq "chain" "$(loaded A)" "xen_hello_world:applied,xen_bye_world:applied"
    manifest A replace xen_replace_world "$xen_id" true "xen_extra"
    apply A --in-place /root/xsa/replace.json
    echo "$res"
    expect_eq "replace: exit status" "$rc" 0
    expect_eq "after the replace" "$(loaded A)" \
        "xen_hello_world:checked,xen_bye_world:checked,xen_replace_world:applied"
    on A 'xl patch revert xen_replace_world && xl patch revert xen_bye_world && xl patch revert xen_hello_world' ||
        fail "reverting the chain failed"
    expect_eq "after the reverts" "$(loaded A)" ""
    expect_eq "xen_extra back" "$(xen_extra A)" "$orig"

    step "a verification that fails: reverted, B left drained and cordoned"
    manifest B bad-verify xen_hello_world "$xen_id" false "No Such Text"
    apply B /root/xsa/bad-verify.json
    echo "$res"
    expect_eq "failed verify: exit status" "$rc" 8
    expect_eq "failed verify: code" "$(json 'd["error"]["code"]' <<<"$res")" reverted
    expect_eq "failed verify: matched" "$(json 'd["verify"]["matched"]' <<<"$res")" False
    expect_eq "failed verify: loaded on B" "$(loaded B)" ""
    expect_eq "failed verify: state of B" "$(host_state B)" cordoned
    on B 'xenstore-read /tool/xenmaint/host/reason' | grep -q "verify" ||
        fail "B's reason does not name the verification"
    on B 'xl undrain --json' > /dev/null || fail "undrain of B failed"
    expect_eq "state of B after undrain" "$(host_state B)" active

    step "the agent on B killed between the upload and the apply, then resumed"
    manifest B xsa-901 xen_hello_world "$xen_id"
    local mark; mark=$(on B 'wc -l < /var/log/messages')
    on B 'p=$(cat /run/xenmaintd.pid); kill "$p"; while kill -0 "$p" 2>/dev/null; do sleep 0.2; done
          XENMAINT_CRASH_AT=patch-uploaded xenmaintd
          for i in $(seq 60); do xenstore-read /tool/xenmaint/agent/pid > /dev/null 2>&1 && exit 0; sleep 0.5; done; exit 1' ||
        fail "cannot start B's agent with the crash point"
    rc=0; on B 'timeout 60 xl patch apply /root/xsa/xsa-901.json' || rc=$?
    expect_eq "xl patch apply when the agent dies: exit status (no agent)" "$rc" 3
    on B 'grep -q "crash point patch-uploaded reached" /var/log/messages' || fail "the agent did not reach the crash point"
    # no agent to ask: the hypervisor's own list
    on B 'xen-livepatch list' | grep -E 'xen_hello_world +\| CHECKED' ||
        fail "after the crash xen_hello_world is not loaded-but-not-applied on B"
    local job; job=$(on B 'python3 -c "import json; print(json.load(open(\"/var/lib/xenmaint/patch-flow\"))[\"job\"])" 2>/dev/null ||
                      sed -n "s/.*\"job\":\"\([^\"]*\)\".*/\1/p" /var/lib/xenmaint/patch-flow')
    echo "journaled job: $job"
    [[ -n $job ]] || fail "no patch journal on B"
    on B 'rm -f /run/xenmaintd.pid; xenstore-rm /tool/xenmaint/agent/pid 2>/dev/null; true'
    "$LAB" agent-restart B
    on B "for i in \$(seq 60); do s=\$(xenstore-read /tool/xenmaint/job/$job/state 2>/dev/null); [ \"\$s\" = done ] && exit 0; [ \"\$s\" = failed ] && exit 1; sleep 0.5; done; exit 1" ||
        { on B "xenstore-read /tool/xenmaint/job/$job/error; tail -n 30 /var/log/messages" || true; fail "the resumed job did not finish"; }
    on B "grep 'patch $job resumed at phase uploading' /var/log/messages" || fail "no resume line in B's log"
    expect_eq "resumed: loaded on B" "$(loaded B)" "xen_hello_world:applied"
    expect_eq "resumed: xen_extra on B" "$(xen_extra B)" "Hello World"
    expect_eq "resumed: applied once" "$(on B "tail -n +$((mark + 1)) /var/log/messages | grep -c 'audit: livepatch apply xsa=XSA-901 payload=xen_hello_world.*result=ok'")" 1
    expect_eq "resumed: state of B" "$(host_state B)" active
    on B 'xl patch revert xen_hello_world' > /dev/null || fail "revert on B failed"

    step "no payload for this hypervisor: B drained and left reboot-required"
    manifest B reboot xen_hello_world "$(printf 'ab%.0s' $(seq 20))"
    apply B /root/xsa/reboot.json
    echo "$res"
    expect_eq "reboot-required: exit status" "$rc" 7
    expect_eq "reboot-required: state of B" "$(host_state B)" reboot-required
    "$LAB" agent-restart B
    expect_eq "same hypervisor after an agent restart" "$(host_state B)" reboot-required
    on B 'xl undrain --json' > /dev/null || fail "undrain of B failed"
    expect_eq "state of B after undrain" "$(host_state B)" active

    step "the guests on A are still ticking"
    ticking A pd1 pd2
}
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
main
