#!/bin/sh
# tests/lab/scenarios/agent-killer.sh -- runs in a lab dom0 (copied there
# by a scenario): kills the host's xenmaintd at a chosen point of its
# next migration, seen through xenstore (the job's per-guest key, phase
# and percent), then writes /run/killed.
#
# usage: agent-killer.sh PHASE MIN_PERCENT MAX_PERCENT DELAY FREEZE
#   the first guest key of a job with "phase":"PHASE" and a percent in
#   MIN..MAX triggers; DELAY s later the agent is killed (-9), or, with
#   FREEZE > 0, stopped (SIGSTOP) and killed FREEZE s after that.  Jobs
#   that exist when it starts never trigger (an agent that starts again
#   rewrites their keys).  Gives up after 120 s (exit 1).
phase=$1 min=$2 max=$3 delay=$4 freeze=$5
rm -f /run/killed
old=" $(xenstore-list /tool/xenmaint/job 2>/dev/null | tr '\n' ' ') "
timeout 120 xenstore-watch /tool/xenmaint/job | while read -r path; do
    case $path in */guest/*) ;; *) continue ;; esac
    job=${path#/tool/xenmaint/job/}
    job=${job%%/*}
    case $old in *" $job "*) continue ;; esac
    v=$(xenstore-read "$path" 2>/dev/null) || continue
    case $v in *"\"phase\":\"$phase\""*) ;; *) continue ;; esac
    pc=${v#*\"percent\":}
    pc=${pc%%[!0-9]*}
    [ -n "$pc" ] && [ "$pc" -ge "$min" ] && [ "$pc" -le "$max" ] || continue
    sleep "$delay"
    p=$(cat /run/xenmaintd.pid)
    if [ "$freeze" != 0 ]; then
        kill -STOP "$p"
        sleep "$freeze"
    fi
    kill -9 "$p" && echo "$path $pc%" > /run/killed
    exit 0
done
