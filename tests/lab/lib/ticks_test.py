#!/usr/bin/env python3
"""tests/lab/lib/ticks_test.py -- ticks.py's arithmetic on made-up logs:
the console gap (1 s stamps), the uptime gap (10 ms), a tick whose line
lost its stamp, --from, and old ticks that carry no uptime.  Run by
tests/check; prints one PASS/FAIL line per case, exits 1 on a failure.
"""
import os
import subprocess
import sys

TICKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ticks.py")


def run(lines, *args):
    p = subprocess.run([sys.executable, TICKS, "g"] + list(args),
                       input="".join(l + "\n" for l in lines),
                       capture_output=True, text=True)
    return p.returncode, p.stdout.strip()


def field(out, name):
    for f in out.split():
        if f.startswith(name + "="):
            return f[len(name) + 1:]
    return None


def tick(host, sec, n, up=None):
    t = "tick %s 2026-12-06 10:00:%02d %d" % (host, sec, n)
    return t if up is None else "%s %.2f" % (t, up)


CASES = []


def case(fn):
    CASES.append(fn)
    return fn


@case
def migrated_once():
    """a 0.62 s pause while moving A -> B: 2 s by the stamps, 1.72 by uptime"""
    rc, out = run(["where B 3", tick("A", 1, 1, 100.00), tick("A", 2, 2, 101.10),
                   tick("B", 4, 3, 102.82), tick("B", 5, 4, 103.92)])
    return (rc == 0 and field(out, "max_gap_s") == "2" and field(out, "gap") == "2@A->3@B"
            and field(out, "max_gap_up") == "1.72" and field(out, "gap_up") == "2@A->3@B"
            and field(out, "host") == "B")


@case
def stall_before_move():
    """a stall on A longer than the move: the uptime gap says where"""
    rc, out = run(["where B 3", tick("A", 1, 1, 100.00), tick("A", 3, 2, 102.40),
                   tick("A", 4, 3, 103.50), tick("B", 5, 4, 104.90)])
    return (rc == 0 and field(out, "max_gap_up") == "2.40"
            and field(out, "gap_up") == "1@A->2@A")


@case
def lost_stamp():
    """a line without its stamp: 2 s by the stamps, the usual tick taken off by uptime"""
    rc, out = run([tick("A", 1, 1, 100.00), tick("A", 2, 2, 101.10),
                   tick("A", 4, 4, 103.30), tick("A", 5, 5, 104.40)])
    return (rc == 0 and field(out, "missing") == "1" and field(out, "max_gap_s") == "2"
            and field(out, "max_gap_up") == "1.10")


@case
def from_tick():
    """--from: only the gaps after that tick"""
    rc, out = run([tick("A", 1, 1, 100.0), tick("A", 5, 2, 104.0),
                   tick("A", 6, 3, 105.1), tick("A", 8, 4, 106.6)], "2")
    return (rc == 0 and field(out, "max_gap_s") == "2" and field(out, "max_gap_up") == "1.50"
            and field(out, "from") == "2")


@case
def no_uptime():
    """ticks of an older guest image: no uptime, max_gap_up=-"""
    rc, out = run([tick("A", 1, 1), tick("A", 3, 2)])
    return (rc == 0 and field(out, "max_gap_s") == "2" and field(out, "max_gap_up") == "-"
            and field(out, "gap_up") == "-")


@case
def no_ticks():
    """no tick at all: exit 1"""
    rc, out = run(["where A 1"])
    return rc == 1 and field(out, "ticks") == "none"


def main():
    failed = 0
    for fn in CASES:
        ok = fn()
        failed += not ok
        print("%s ticks.py: %s" % ("PASS" if ok else "FAIL", fn.__doc__.splitlines()[0]))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
