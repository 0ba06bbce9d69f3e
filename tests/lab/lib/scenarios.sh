# tests/lab/lib/scenarios.sh -- `lab scenarios [--no-project] [-v] [NAME...]`:
# run scenario scripts against the lab hosts.
#
# Scenario contract (tests/lab/scenarios/NN-name.sh, executable):
#  - run from the repository root with stdin from /dev/null, `lab` on PATH
#    and in $LAB, the hosts up named in $LAB_HOSTS ("A B ..."), and
#    $LAB_PROJECT = yes|no (are the project's binaries installed);
#  - optional header lines: "# lab-hosts: N" (hosts it needs, default 2),
#    "# lab-needs: project" (SKIP when booted with --no-project);
#  - exit 0 = PASS, 77 = SKIP (its last output line says why), else FAIL;
#  - output goes to $LAB_RUN/scenarios/NAME.log (shown live with -v, and
#    its tail on failure); each run is bounded by LAB_SCENARIO_TIMEOUT s.
# The runner boots the hosts once (or reuses those up, if enough), resets
# every host before each scenario (guests destroyed, livepatches reverted,
# console logs cleared, clocks set) and prints one line per scenario, then
# "N passed, N failed, N skipped"; its status is non-zero on any failure.
# Hosts it booted itself are taken down at the end unless LAB_KEEP_UP=1.

LAB_SCENARIO_TIMEOUT=${LAB_SCENARIO_TIMEOUT:-1200}

# lab_scenario_header FILE KEY -> value of "# KEY: value" in FILE
lab_scenario_header() { sed -n "s/^# $2: *//p" "$1" | head -1; }

# lab_scenario_list NAME... -> scenario files selected (all when no NAME)
lab_scenario_list() {
    local f base want found
    for f in "$LAB_DIR"/scenarios/[0-9][0-9]-*.sh; do
        [[ -x $f ]] || continue
        base=$(basename "$f" .sh)
        if (($# == 0)); then echo "$f"; continue; fi
        for want in "$@"; do
            [[ $want == "$base" || $want == "${base#[0-9][0-9]-}" || $want == "$base.sh" ]] && echo "$f"
        done
    done
    for want in "$@"; do
        found=no
        for f in "$LAB_DIR"/scenarios/[0-9][0-9]-*.sh; do
            base=$(basename "$f" .sh)
            [[ $want == "$base" || $want == "${base#[0-9][0-9]-}" || $want == "$base.sh" ]] && found=yes
        done
        [[ $found == yes ]] || lab_die "no scenario named '$want' in $LAB_DIR/scenarios"
    done
}

# lab_scenarios_hosts_ok N -> true when at least N hosts are up and answer
lab_scenarios_hosts_ok() {
    local n=0 h
    while read -r h; do
        lab_qemu_pid "$h" > /dev/null || return 1
        n=$((n + 1))
    done < <(lab_hosts_up)
    ((n >= $1))
}

# lab_scenario_run FILE: run one scenario; prints its result line and
# sets LAB_RESULT to PASS, FAIL or SKIP
lab_scenario_run() {
    local f=$1 name log t0 rc reason hosts
    name=$(basename "$f" .sh)
    log=$LAB_RUN/scenarios/$name.log
    t0=$(lab_now)
    if [[ $(lab_scenario_header "$f" lab-needs) == *project* && $(cat "$LAB_RUN/project") != yes ]]; then
        echo "SKIP $name: needs the project (hosts booted with --no-project)"
        LAB_RESULT=SKIP; return
    fi
    if ! (lab_cmd_reset && lab_clock_sync $(lab_hosts_up)) > "$log" 2>&1; then
        echo "FAIL $name ($(lab_since "$t0")s): could not reset the hosts before it"
        tail -n 20 "$log" | sed 's/^/    /'
        LAB_RESULT=FAIL; return
    fi
    hosts=$(lab_hosts_up | tr '\n' ' ')
    set +e
    (
        cd "$REPO_DIR" &&
        PATH=$LAB_DIR:$PATH LAB=$LAB_DIR/lab LAB_HOSTS=${hosts% } \
        LAB_PROJECT=$(cat "$LAB_RUN/project") \
        exec timeout -k 10 "$LAB_SCENARIO_TIMEOUT" "$f" < /dev/null
    ) 2>&1 | if [[ $LAB_VERBOSE == yes ]]; then tee -a "$log" | sed 's/^/    | /'; else cat >> "$log"; fi
    rc=${PIPESTATUS[0]}
    set -e
    case $rc in
        0)  echo "PASS $name ($(lab_since "$t0")s)"; LAB_RESULT=PASS ;;
        77) reason=$(grep -v '^\[lab\]' "$log" | tail -n 1)
            echo "SKIP $name: ${reason:-no reason given}"; LAB_RESULT=SKIP ;;
        *)  echo "FAIL $name ($(lab_since "$t0")s)"
            [[ $rc == 124 ]] && echo "    timed out after $LAB_SCENARIO_TIMEOUT s (LAB_SCENARIO_TIMEOUT)"
            echo "    last lines of $log:"
            tail -n 25 "$log" | sed 's/^/    /'
            lab_dump_logs
            LAB_RESULT=FAIL ;;
    esac
}

lab_cmd_scenarios() {
    local args=() up_args=() files=() f need=2 n booted=no passed=0 failed=0 skipped=0 a
    LAB_VERBOSE=no
    for a in "$@"; do
        case $a in
            --no-project) up_args+=(--no-project) ;;
            -v)           LAB_VERBOSE=yes ;;
            *)            args+=("$a") ;;
        esac
    done
    mapfile -t files < <(lab_scenario_list "${args[@]+"${args[@]}"}")
    ((${#files[@]})) || lab_die "no scenario to run"
    for f in "${files[@]}"; do
        n=$(lab_scenario_header "$f" lab-hosts); n=${n:-2}
        ((n > need)) && need=$n
    done
    if ! lab_scenarios_hosts_ok "$need"; then
        lab_hosts_up | grep -q . && lab_cmd_down
        lab_cmd_up "$need" "${up_args[@]+"${up_args[@]}"}"
        booted=yes
    else
        lab_say "reusing the hosts up: $(lab_hosts_up | tr '\n' ' ')"
    fi
    mkdir -p "$LAB_RUN/scenarios"
    for f in "${files[@]}"; do
        lab_scenario_run "$f"
        case $LAB_RESULT in
            PASS) passed=$((passed + 1)) ;;
            FAIL) failed=$((failed + 1)) ;;
            SKIP) skipped=$((skipped + 1)) ;;
        esac
    done
    if [[ $booted == yes && ${LAB_KEEP_UP:-0} != 1 ]]; then
        lab_cmd_down
    fi
    echo "$passed passed, $failed failed, $skipped skipped"
    ((failed == 0))
}
