#!/bin/bash
# tests/lab/scenarios/20-patch.sh -- livepatching through xenmaintd on a
# real hypervisor, in place (with a guest running): `xl patch check` of
# an XSA manifest says what this host needs; `xl patch apply --in-place`
# runs the pre-flight (ELF, build-ids, sha256, the applied stack), then
# upload, apply and verify, and `xl info` shows "xen_extra : Hello World";
# checking and applying again are "already patched"; broken payloads, a
# wrong checksum, a manifest for another hypervisor and a payload whose
# dependency is not applied are refused with the mismatch named and
# nothing reaching the hypervisor; `xl patch revert` restores xen_extra.
# lab-hosts: 2
# lab-needs: project
. "$(dirname "$0")/lib.sh"

D=$LAB_LIVEPATCH_DIR

# loaded HOST -> names of loaded payloads, comma separated
loaded() {
    on "$1" 'xl patch list --json' | json '",".join(p["name"] for p in d["livepatches"])'
}

build_id_of() {
    on A "awk -v f='$1' '\$1 == f {print \$2}' $D/BUILD-IDS"
}

# manifest NAME FILE XEN_BUILD_ID [SHA]: an XSA manifest in /root/xsa
manifest() {
    local name=$1 file=$2 xen=$3 sha=${4:-}
    [[ -n $sha ]] || sha=$(on A "sha256sum /root/xsa/$file | cut -d' ' -f1")
    "$LAB" exec A "cat > /root/xsa/$name.json" <<JSON
{ "version": 1, "xsa": "XSA-900", "title": "lab: hello world",
  "payloads": [ { "name": "xen_hello_world", "file": "$file",
                  "sha256": "$sha", "xen_build_ids": ["$xen"],
                  "depends": null, "replace": false } ],
  "no_payload": "reboot-required" }
JSON
}

main() {
    local xen_id orig rc out
    step "a ticking guest on A; the hypervisor's build-id"
    "$LAB" guest A pg1 128
    xen_id=$(on A 'xl maint-status --json' | json 'd["hosts"][0]["build_id"]')
    expect_eq "running build-id is xen-syms'" "$xen_id" "$(build_id_of xen-syms)"
    orig=$(xen_extra A)
    on A "mkdir -p /root/xsa && cp $D/xen_hello_world.livepatch /root/xsa/"
    manifest xsa-900 xen_hello_world.livepatch "$xen_id"

    step "xl patch check: applicable, which payload"
    on A 'xl patch check /root/xsa/xsa-900.json --json' > "$TMP/check.json" ||
        fail "xl patch check failed"
    cat "$TMP/check.json"; echo
    expect_eq "verdict" "$(json 'd["verdict"]' < "$TMP/check.json")" applicable
    expect_eq "payload" "$(json 'd["payload"]' < "$TMP/check.json")" xen_hello_world

    step "pre-flight refusals: nothing reaches the hypervisor"
    on A "head -c 3000 $D/xen_hello_world.livepatch > /root/xsa/truncated.livepatch"
    on A "head -c 64 /dev/urandom > /root/xsa/garbage.livepatch"
    rc=0; out=$(on A 'xl patch apply --in-place /root/xsa/truncated.livepatch' 2>&1) || rc=$?
    echo "$out"; ((rc != 0)) || fail "a truncated payload was accepted"
    rc=0; out=$(on A 'xl patch apply --in-place /root/xsa/garbage.livepatch' 2>&1) || rc=$?
    echo "$out"; ((rc != 0)) || fail "a garbage payload was accepted"
    grep -qi elf <<<"$out" || fail "the garbage refusal does not say ELF"
    manifest badsum xen_hello_world.livepatch "$xen_id" "$(printf '0%.0s' $(seq 64))"
    rc=0; out=$(on A 'xl patch apply --in-place /root/xsa/badsum.json' 2>&1) || rc=$?
    echo "$out"; ((rc != 0)) || fail "a wrong sha256 was accepted"
    grep -qi sha256 <<<"$out" || fail "the checksum refusal does not say sha256"
    manifest other xen_hello_world.livepatch "$(printf 'ab%.0s' $(seq 20))"
    rc=0; on A 'xl patch check /root/xsa/other.json --json' > "$TMP/other.json" || rc=$?
    cat "$TMP/other.json"; echo
    expect_eq "check for another hypervisor: exit status" "$rc" 4
    expect_eq "verdict" "$(json 'd["verdict"]' < "$TMP/other.json")" not-applicable
    grep -qi reboot "$TMP/other.json" || fail "no 'reboot' in the not-applicable reason"
    rc=0; out=$(on A "xl patch apply --in-place $D/xen_bye_world.livepatch" 2>&1) || rc=$?
    echo "$out"; ((rc != 0)) || fail "xen_bye_world applied without xen_hello_world"
    grep -q "$(build_id_of livepatch/xen_hello_world.livepatch)" <<<"$out" ||
        fail "the dependency refusal does not name the build-id it needs"
    expect_eq "payloads loaded after the refusals" "$(loaded A)" ""
    expect_eq "xen_extra after the refusals" "$(xen_extra A)" "$orig"

    step "xl patch apply --in-place: upload, apply, verify"
    local t0; t0=$(date +%s.%N)
    on A 'xl patch apply --in-place /root/xsa/xsa-900.json' || fail "xl patch apply failed"
    echo "applied in $(seconds_since "$t0") s (including the xl round trip)"
    expect_eq "xen_extra" "$(xen_extra A)" "Hello World"
    on A 'xen-livepatch list' | grep -E 'xen_hello_world +\| APPLIED' ||
        fail "xen-livepatch list does not show xen_hello_world APPLIED"
    on A 'grep "audit: livepatch apply xsa=XSA-900 payload=xen_hello_world" /var/log/messages' ||
        fail "no audit line for the apply"

    step "idempotent: check and apply again"
    on A 'xl patch check /root/xsa/xsa-900.json --json' > "$TMP/again.json" || fail "check after apply failed"
    expect_eq "verdict" "$(json 'd["verdict"]' < "$TMP/again.json")" already-patched
    on A 'xl patch apply --in-place /root/xsa/xsa-900.json --json' > "$TMP/again2.json" || fail "second apply failed"
    expect_eq "second apply" "$(json 'd["state"]' < "$TMP/again2.json")" already-applied

    step "stacked: xen_bye_world on top of xen_hello_world"
    on A "xl patch apply --in-place $D/xen_bye_world.livepatch" || fail "xen_bye_world refused on top of hello"
    expect_eq "loaded" "$(loaded A)" "xen_hello_world,xen_bye_world"
    on A 'xl patch revert xen_bye_world' || fail "revert of xen_bye_world failed"

    step "xl patch revert: back to the original hypervisor"
    on A 'xl patch revert xen_hello_world' || fail "xl patch revert failed"
    expect_eq "xen_extra after revert" "$(xen_extra A)" "$orig"
    expect_eq "payloads loaded" "$(loaded A)" ""
    on A 'xl patch revert xen_hello_world' || fail "reverting what is not loaded is not a success"

    step "the guest kept running"
    local t1 t2
    t1=$(guest_field pg1 ticks); t1=${t1#*..}; sleep 3
    t2=$(guest_field pg1 ticks); t2=${t2#*..}
    ((t2 > t1)) || fail "pg1 stopped ticking ($t1 -> $t2)"
    "$LAB" ticks pg1
}
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
main
