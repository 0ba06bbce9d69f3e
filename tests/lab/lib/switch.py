#!/usr/bin/env python3
"""tests/lab/lib/switch.py -- the lab link for three or more hosts: a small
learning Ethernet switch between QEMU `-netdev dgram` unix sockets.

usage: switch.py SOCKET PIDFILE [HOSTSOCKET...]
Each host's QEMU sends its frames to SOCKET from its own datagram socket;
the switch learns which socket each source MAC lives behind, forwards
unicast frames to that one socket and floods broadcast, multicast and
unknown destinations to every other host socket (those given on the
command line and those seen since).  Nothing leaves
the machine: unix datagram sockets only.  It runs until killed.
"""
import os
import socket
import sys


def main(path, pidfile, known):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    sock.bind(path)
    with open(pidfile, "w") as f:
        f.write("%d\n" % os.getpid())
    ports = list(known)  # host socket paths
    where = {}          # MAC -> sender socket path
    while True:
        frame, sender = sock.recvfrom(1 << 17)
        if not sender or len(frame) < 14:
            continue
        if sender not in ports:
            ports.append(sender)
        dst, src = frame[0:6], frame[6:12]
        where[src] = sender
        if not dst[0] & 1 and dst in where:
            targets = [where[dst]] if where[dst] != sender else []
        else:
            targets = [p for p in ports if p != sender]
        for t in targets:
            try:
                sock.sendto(frame, t)
            except OSError:
                pass        # that host is gone or its queue is full: drop


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
