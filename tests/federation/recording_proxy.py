#!/usr/bin/python3
"""A TCP proxy for federation tests: records the bytes passing through it, and can break a
connection on purpose.

    recording_proxy.py --upstream 127.0.0.1:PORT --port-file FILE [--record-up FILE]
                       [--record-down FILE] [--cut-down-after BYTES] [--stats FILE]

Listens on 127.0.0.1 at a port the kernel picks (written to --port-file once listening) and
forwards each connection to --upstream. It does not parse HTTP/2 or gRPC: a recording is the
exact byte stream put on the wire.
  --record-up / --record-down  append what clients send / receive to these files
                               (no_data_leaves_site_test).
  --cut-down-after BYTES       the first connection is closed abruptly (both sides reset)
                               once BYTES have been forwarded to the client: a broken
                               download (monitor_test).
  --stats FILE                 after every connection, writes
                               {"connections": N, "down_bytes": B, "cuts": C} as JSON.
Runs until killed.
"""
import argparse
import json
import os
import socket
import struct
import threading

LOCK = threading.Lock()
STATS = {"connections": 0, "down_bytes": 0, "cuts": 0}


def write_stats(path):
    if path:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(STATS, f)
        os.replace(tmp, path)


def reset(sock):
    """Closes with RST instead of FIN: the peer sees a broken connection, not an end."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    except OSError:
        pass


def pump(src, dst, record, downstream, cut_after, stats_path):
    forwarded = 0
    try:
        while True:
            data = src.recv(1 << 16)
            if not data:
                break
            if cut_after is not None and forwarded + len(data) >= cut_after:
                data = data[: max(0, cut_after - forwarded)]
                dst.sendall(data)
                with LOCK:
                    STATS["down_bytes"] += len(data)
                    STATS["cuts"] += 1
                    write_stats(stats_path)
                reset(src)
                reset(dst)
                return
            forwarded += len(data)
            with LOCK:
                if record is not None:
                    record.write(data)
                    record.flush()
                if downstream:
                    STATS["down_bytes"] += len(data)
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if downstream:
            with LOCK:
                write_stats(stats_path)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--upstream", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--record-up")
    p.add_argument("--record-down")
    p.add_argument("--cut-down-after", type=int)
    p.add_argument("--stats")
    a = p.parse_args()
    host, port = a.upstream.rsplit(":", 1)
    up = open(a.record_up, "ab") if a.record_up else None
    down = open(a.record_down, "ab") if a.record_down else None

    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % server.getsockname()[1])
    os.replace(tmp, a.port_file)

    while True:
        client, _ = server.accept()
        try:
            upstream = socket.create_connection((host, int(port)))
        except OSError:
            client.close()
            continue
        for s in (client, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with LOCK:
            STATS["connections"] += 1
            first = STATS["connections"] == 1
            write_stats(a.stats)
        cut = a.cut_down_after if first else None
        threading.Thread(target=pump, args=(client, upstream, up, False, None, a.stats),
                         daemon=True).start()
        threading.Thread(target=pump, args=(upstream, client, down, True, cut, a.stats),
                         daemon=True).start()


if __name__ == "__main__":
    main()
