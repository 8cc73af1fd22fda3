#!/usr/bin/python3
"""A TCP proxy that records every byte passing through it, for no_data_leaves_site_test.

    recording_proxy.py --upstream 127.0.0.1:PORT --port-file FILE --record-up FILE
                       [--record-down FILE]

Listens on 127.0.0.1 at a port the kernel picks (written to --port-file once listening),
forwards each connection to --upstream, and appends what the client sends (upstream) to
--record-up and, optionally, what it receives to --record-down. It does not parse HTTP/2 or
gRPC: the recording is the exact byte stream the site put on the wire. Runs until killed.
"""
import argparse
import os
import socket
import threading


def pump(src, dst, record, lock):
    try:
        while True:
            data = src.recv(1 << 16)
            if not data:
                break
            if record is not None:
                with lock:
                    record.write(data)
                    record.flush()
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--upstream", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--record-up", required=True)
    p.add_argument("--record-down")
    a = p.parse_args()
    host, port = a.upstream.rsplit(":", 1)
    up = open(a.record_up, "ab")
    down = open(a.record_down, "ab") if a.record_down else None
    up_lock, down_lock = threading.Lock(), threading.Lock()

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
        threading.Thread(target=pump, args=(client, upstream, up, up_lock), daemon=True).start()
        threading.Thread(target=pump, args=(upstream, client, down, down_lock), daemon=True).start()


if __name__ == "__main__":
    main()
