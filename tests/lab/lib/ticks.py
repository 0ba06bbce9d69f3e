#!/usr/bin/env python3
"""tests/lab/lib/ticks.py -- `lab ticks NAME`: where a lab guest runs and
the largest gap between its consecutive ticks, across hosts.

usage: ticks.py NAME [FROM] < LINES
LINES, gathered by `lab ticks` from every host's xenconsoled logs:
  where HOST DOMID                  guest NAME runs on HOST as DOMID
  tick HOST YYYY-MM-DD HH:MM:SS N [UP]
                                    tick N was logged on HOST at that time (UTC),
                                    the guest's uptime then UP (s, 10 ms)
Prints one line, e.g.
  web1 host=B domid=3 ticks=1..57 missing=0 max_gap_s=2 gap=23@A->24@B max_gap_up=1.62 gap_up=23@A->24@B
max_gap_s is the largest difference between the log times of two
consecutive ticks seen (1 s resolution; a tick lasts 1 s, so anything
above 1 is time the guest did not run or its output was held up).
max_gap_up is the largest difference of the uptimes the guest printed
with two consecutive ticks (10 ms resolution: the guest's own clock,
which counts the time it was suspended; a tick takes a little over 1 s
under emulation; where tick lines are missing in between, their usual
length is taken off), "-" when the ticks carry none; gap_up the two
ticks it lies between (a move, or a stall on one host).
missing counts tick numbers found in no log.  With FROM (a tick number)
only the gaps after tick FROM count, so a caller that noted the guest's
last tick before a move gets the gap of that move alone; the line then
ends with from=FROM (max_gap_s=0 gap=- if no tick followed it).  Exits 1
when no tick of NAME was found at all, 2 on a FROM that is not a number.
"""
import calendar
import sys
import time


def main(name, start=None):
    where, seen = [], {}
    for line in sys.stdin:
        f = line.split()
        if len(f) == 3 and f[0] == "where":
            where.append("%s domid=%s" % (f[1], f[2]))
        elif len(f) in (5, 6) and f[0] == "tick":
            t = calendar.timegm(time.strptime(f[2] + " " + f[3], "%Y-%m-%d %H:%M:%S"))
            n = int(f[4])
            try:
                up = float(f[5]) if len(f) == 6 else None
            except ValueError:
                up = None
            if n not in seen or t < seen[n][0]:
                seen[n] = (t, f[1], up)
    host = "host=" + ",".join(where) if where else "host=none domid=-"
    if not seen:
        print("%s %s ticks=none" % (name, host))
        sys.exit(1)
    nums = sorted(seen)
    missing = (nums[-1] - nums[0] + 1) - len(nums)
    # a tick's usual length by the guest's clock, for ticks whose line
    # was lost in between (the median of the consecutive ones)
    steps = sorted(seen[b][2] - seen[a][2] for a, b in zip(nums, nums[1:])
                   if b == a + 1 and seen[a][2] is not None
                   and seen[b][2] is not None)
    period = steps[len(steps) // 2] if steps else None
    gap, at, gap_up, up_at = 0, "-", None, "-"

    for a, b in zip(nums, nums[1:]):
        if start is not None and a < start:
            continue
        d = seen[b][0] - seen[a][0]
        if d > gap:
            gap, at = d, "%d@%s->%d@%s" % (a, seen[a][1], b, seen[b][1])
        if period is not None and seen[a][2] is not None and seen[b][2] is not None:
            u = seen[b][2] - seen[a][2] - (b - a - 1) * period
            if gap_up is None or u > gap_up:
                gap_up, up_at = u, "%d@%s->%d@%s" % (a, seen[a][1], b, seen[b][1])
    print("%s %s ticks=%d..%d missing=%d max_gap_s=%d gap=%s max_gap_up=%s gap_up=%s%s"
          % (name, host, nums[0], nums[-1], missing, gap, at,
             "-" if gap_up is None else "%.2f" % gap_up, up_at,
             "" if start is None else " from=%d" % start))


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: ticks.py NAME [FROM]")
    if len(sys.argv) == 3 and not sys.argv[2].isdigit():
        print("ticks.py: FROM must be a tick number, not %r" % sys.argv[2], file=sys.stderr)
        sys.exit(2)
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) == 3 else None)
