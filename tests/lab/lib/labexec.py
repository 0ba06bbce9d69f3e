#!/usr/bin/env python3
"""tests/lab/lib/labexec.py -- host side of `lab exec`: run a command in a
lab host's dom0 through its virtio-serial command ports (see dom0/labd).

usage: labexec.py [-n] HOSTDIR TIMEOUT CMD
  HOSTDIR  the host's runtime directory (exec.N.sock and exec.N.lock in it)
  TIMEOUT  seconds the command may run in dom0 (it is killed after that)
  -n       send no stdin (default: stdin is forwarded unless it is a tty)

Picks a free port (a lock file per port lets several `lab exec` run at
once against one host), sends one framed request, waits for the reply
with the same id (stale replies of an interrupted client are skipped),
writes the command's stdout and stderr out unchanged and exits with its
status.  Exit 124 with a message when the command timed out, 125 when the
lab host could not be reached or the reply never came.
"""
import fcntl
import os
import random
import socket
import sys
import time

MAGIC_REQ = b"LABX1"
MAGIC_REP = b"LABR1"
CONNECT_GRACE = 10      # seconds to reach the port
REPLY_GRACE = 30        # seconds beyond TIMEOUT to wait for the reply


def fail(msg, status=125):
    sys.stderr.write("lab exec: %s\n" % msg)
    sys.exit(status)


def lock_a_port(hostdir):
    """Return (port index, locked file) of a free port, waiting if all are busy."""
    ports = sorted(int(f.split(".")[1]) for f in os.listdir(hostdir)
                   if f.startswith("exec.") and f.endswith(".sock"))
    if not ports:
        fail("no command ports in %s: is the host up?" % hostdir)
    files = []
    for p in ports:
        f = open(os.path.join(hostdir, "exec.%d.lock" % p), "w")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return p, f
        except BlockingIOError:
            files.append(f)
    p = random.choice(ports)
    f = files[ports.index(p)]
    fcntl.flock(f, fcntl.LOCK_EX)
    return p, f


class Reader:
    """Buffered exact reads from a socket with an absolute deadline."""

    def __init__(self, sock, deadline):
        self.sock, self.deadline, self.buf = sock, deadline, b""

    def _more(self):
        left = self.deadline - time.time()
        if left <= 0:
            raise TimeoutError
        self.sock.settimeout(min(left, 5))
        try:
            data = self.sock.recv(1 << 16)
        except socket.timeout:
            return
        if not data:
            raise EOFError
        self.buf += data

    def line(self):
        while b"\n" not in self.buf:
            self._more()
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def exact(self, n):
        while len(self.buf) < n:
            self._more()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data


def main(argv):
    send_stdin = True
    if argv and argv[0] == "-n":
        send_stdin, argv = False, argv[1:]
    if len(argv) != 3:
        fail("usage: labexec.py [-n] HOSTDIR TIMEOUT CMD", 2)
    hostdir, timeout, cmd = argv[0], int(argv[1]), argv[2].encode()
    host = os.path.basename(hostdir.rstrip("/"))
    stdin = b""
    if send_stdin and not sys.stdin.isatty():
        stdin = sys.stdin.buffer.read()
    port, lock = lock_a_port(hostdir)
    path = os.path.join(hostdir, "exec.%d.sock" % port)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    deadline = time.time() + CONNECT_GRACE
    while True:
        try:
            sock.connect(path)
            break
        except OSError as e:
            if time.time() > deadline:
                fail("host %s: cannot connect to %s: %s" % (host, path, e))
            time.sleep(0.2)
    rid = "%d-%d" % (os.getpid(), random.randrange(1 << 30))
    header = b"%s %s %d %d %d\n" % (MAGIC_REQ, rid.encode(), timeout, len(cmd), len(stdin))
    sock.sendall(header + cmd + stdin)
    rd = Reader(sock, time.time() + timeout + REPLY_GRACE)
    try:
        while True:
            fields = rd.line().split()
            if len(fields) != 5 or fields[0] != MAGIC_REP:
                continue                     # noise: skip until a reply header
            _, got, status, outlen, errlen = fields
            out, err = rd.exact(int(outlen)), rd.exact(int(errlen))
            if got.decode() == rid:
                break                        # else a stale reply: skip it
    except TimeoutError:
        fail("host %s: no reply within %d s to: %s" % (host, timeout + REPLY_GRACE, argv[2]))
    except EOFError:
        fail("host %s: connection closed (did the host die?) while running: %s" % (host, argv[2]))
    finally:
        sock.close()
        lock.close()
    sys.stdout.buffer.write(out)
    sys.stdout.flush()
    sys.stderr.buffer.write(err)
    status = int(status)
    if status == 124:
        sys.stderr.write("lab exec: host %s: command timed out after %d s (LAB_TIMEOUT): %s\n"
                         % (host, timeout, argv[2]))
    sys.exit(status)


if __name__ == "__main__":
    main(sys.argv[1:])
