#!/usr/bin/python3
"""A TCP proxy that breaks connections on purpose, for the fault tests.

    fault_proxy.py --upstream HOST:PORT --port-file FILE [--plan ACTION,ACTION,...]
                   [--log FILE]

Listens on 127.0.0.1 at a port the kernel picks (written to --port-file once listening) and
forwards each connection to --upstream, byte for byte (it does not parse HTTP/2 or gRPC).
The plan gives one action per accepted connection, in order; connections after the plan's
end are forwarded untouched. Bytes are counted per connection and direction ("down" = to the
client, "up" = to the server):
  pass                    forward untouched
  cut-down:BYTES          once BYTES have gone down, forward exactly up to BYTES and reset both
                          sides (RST, not FIN): a download broken mid-stream
  cut-up:BYTES            the same for bytes going up: an upload broken mid-stream
  stall-up:BYTES:SECONDS  after BYTES have gone up, forward nothing more up for SECONDS, then
                          carry on: an upload that stalls mid-stream
  stall-down:BYTES:SECONDS  the same, downwards
--log appends one JSON object per line for every connection and every action taken:
  {"conn": N, "event": "open" | "cut-down" | "cut-up" | "stall-up" | "stall-down" |
   "resume-up" | "resume-down", "bytes": B, "t": UNIX_TIME}
Runs until killed.
"""
import argparse
import json
import os
import socket
import struct
import threading
import time

LOCK = threading.Lock()


def log(path, **event):
    if not path:
        return
    event["t"] = time.time()
    with LOCK, open(path, "a") as f:
        f.write(json.dumps(event) + "\n")


def reset(sock):
    """Closes with RST instead of FIN: the peer sees a broken connection, not an end. The
    SHUT_RD wakes the other direction's thread out of its recv() on this socket first: until
    it lets go, the kernel would keep the socket open and send nothing."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def parse_action(text):
    parts = text.split(":")
    kind = parts[0]
    if kind == "pass" and len(parts) == 1:
        return {"kind": "pass"}
    if kind in ("cut-down", "cut-up") and len(parts) == 2:
        return {"kind": kind, "bytes": int(parts[1])}
    if kind in ("stall-down", "stall-up") and len(parts) == 3:
        return {"kind": kind, "bytes": int(parts[1]), "seconds": float(parts[2])}
    raise SystemExit("fault_proxy.py: bad plan action %r" % text)


def pump(conn, src, dst, direction, action, log_path, both, cut):
    """Copies src to dst, applying `action` when it concerns this direction. `cut` is set once
    either direction has reset the connection."""
    forwarded = 0
    kind = action["kind"]
    mine = kind.endswith("-" + direction)
    done = not mine
    try:
        while True:
            data = src.recv(1 << 16)
            if not data:
                break
            if not done and forwarded + len(data) >= action["bytes"]:
                head = data[: max(0, action["bytes"] - forwarded)]
                dst.sendall(head)
                forwarded += len(head)
                data = data[len(head):]
                done = True
                if kind.startswith("cut-"):
                    cut.set()
                    for s in both:
                        reset(s)
                    log(log_path, conn=conn, event=kind, bytes=forwarded)
                    return
                log(log_path, conn=conn, event=kind, bytes=forwarded)
                time.sleep(action["seconds"])
                log(log_path, conn=conn, event="resume-" + direction, bytes=forwarded)
            if data:
                dst.sendall(data)
                forwarded += len(data)
    except OSError:
        pass
    finally:
        if not cut.is_set():  # a clean end: pass it on (FIN); a cut has already reset both
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--upstream", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--plan", default="")
    p.add_argument("--log")
    a = p.parse_args()
    host, port = a.upstream.rsplit(":", 1)
    plan = [parse_action(t) for t in a.plan.split(",") if t]

    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % server.getsockname()[1])
    os.replace(tmp, a.port_file)

    conn = 0
    while True:
        client, _ = server.accept()
        try:
            upstream = socket.create_connection((host, int(port)))
        except OSError:
            client.close()
            continue
        conn += 1
        action = plan[conn - 1] if conn <= len(plan) else {"kind": "pass"}
        log(a.log, conn=conn, event="open", bytes=0, action=action["kind"])
        for s in (client, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        both = (client, upstream)
        cut = threading.Event()
        threading.Thread(target=pump, args=(conn, client, upstream, "up", action, a.log, both, cut),
                         daemon=True).start()
        threading.Thread(target=pump, args=(conn, upstream, client, "down", action, a.log, both, cut),
                         daemon=True).start()


if __name__ == "__main__":
    main()
