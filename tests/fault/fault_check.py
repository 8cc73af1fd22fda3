#!/usr/bin/python3
"""Checks the coordinator's durable state for the fault tests.

    fault_check.py state STATE_DIR [--before SNAPSHOT.json] [--save SNAPSHOT.json]
        Every checkpoint file under STATE_DIR/checkpoints verifies (magic, length, SHA-256
        trailer); the rounds table holds rounds 0..L once each; each round's global
        checkpoint, when kept, holds the model whose digest its row records. A global
        checkpoint of round L+1 without a row (a crash between writing the files and
        committing the row) may exist but must verify too; temporary files of an interrupted
        write are counted, not judged (the restart must remove them).
        --before: the rounds committed at an earlier check; every one of them must still be
        there unchanged (same digest, same sites, same finish time): the round counter never
        goes back and no completed round is lost. --save writes this check's rounds there.
        Prints {"last": L, "orphan": bool, "checkpoints": N, "temporary": T} on success.

    fault_check.py fedavg STATE_DIR DUMP_DIR... [--rounds R,R,...]
        For each round r (default: every round > 0 with checkpoints r-1 and r), recomputes
        FedAvg from the updates the sites kept (site.debug_dump_updates: the updates the
        coordinator acknowledged): global_r must equal global_{r-1} + sum(n_k delta_k) / sum(n_k)
        over exactly those updates, and the round's sites_reported must equal their number.
        A folded half-received update, a dropped acknowledged one or a double fold all fail.
        One exception, said on the output: a coordinator killed after folding an update but
        before answering leaves the site without an acknowledgement; when the round counts
        more updates than were acknowledged, a site's last update sent for it (round-r.sent)
        stands in for the missing acknowledgement if the audit log (STATE_DIR/audit.log)
        records that site's upload for round r as accepted; FedAvg must still hold exactly.
Exits non-zero with a message naming what is wrong.
"""
import glob
import hashlib
import json
import os
import sqlite3
import struct
import sys

DTYPES = {1: "<f4", 2: "<f8", 3: "<f2", 5: "<i8", 6: "<i4", 7: "i1", 8: "u1", 9: "u1"}


def fail(msg):
    print("fault_check: " + msg, file=sys.stderr)
    sys.exit(1)


def varint(b, i):
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return v, i


def fields(b):
    """(field number, wire type, value) of a protobuf message."""
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(b, i)
        elif wt == 2:
            n, i = varint(b, i)
            v, i = b[i:i + n], i + n
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        elif wt == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise ValueError("wire type %d" % wt)
        yield num, wt, v


def parse_manifest(b):
    tensors = []
    for num, _, v in fields(b):
        if num != 1:
            continue
        t = {"name": "", "dtype": 0, "offset": 0, "nbytes": 0}
        for n2, wt2, v2 in fields(v):
            if n2 == 1:
                t["name"] = v2.decode()
            elif n2 == 2:
                t["dtype"] = v2
            elif n2 == 4:
                t["offset"] = v2
            elif n2 == 5:
                t["nbytes"] = v2
        tensors.append(t)
    return tensors


def read_state(path):
    """Verifies a ModelState file; returns (manifest tensors, buffer bytes, hex digest of buffer)."""
    d = open(path, "rb").read()
    if len(d) < 24 + 32 or d[:8] != b"DFMSTATE":
        fail("%s: not a whole model state file (%d bytes, magic %r)" % (path, len(d), d[:8]))
    if hashlib.sha256(d[:-32]).digest() != d[-32:]:
        fail("%s: checksum mismatch: the file is not whole" % path)
    manifest_len = struct.unpack("<Q", d[16:24])[0]
    start = (24 + manifest_len + 63) // 64 * 64
    buf = d[start:-32]
    return parse_manifest(d[24:24 + manifest_len]), buf, hashlib.sha256(buf).hexdigest()


def rounds_of(state):
    with sqlite3.connect("file:%s?mode=ro" % os.path.join(state, "coordinator.db"), uri=True) as c:
        return [list(r) for r in c.execute(
            "SELECT round, digest, sites_selected, sites_reported, started, finished FROM rounds "
            "ORDER BY round")]


def check_state(state, before, save):
    rows = rounds_of(state)
    numbers = [r[0] for r in rows]
    if numbers != list(range(len(rows))):
        fail("the rounds table holds rounds %s, not 0..%d once each" % (numbers, len(rows) - 1))
    last = numbers[-1]
    if before:
        old = json.load(open(before))
        if len(old) > len(rows):
            fail("the round counter went back: %d rounds were committed, now %d" %
                 (len(old) - 1, last))
        for o, n in zip(old, rows):
            if o != n:
                fail("committed round %d changed: %s -> %s" % (o[0], o, n))
    digests = {r[0]: r[1] for r in rows}
    ckdir = os.path.join(state, "checkpoints")
    leftovers = [f for f in os.listdir(ckdir) if ".tmp" in f]
    orphan = False
    files = sorted(glob.glob(os.path.join(ckdir, "*.dfs")))
    for f in files:
        name = os.path.basename(f)
        kind, num = name[:-4].split("-")
        rnd = int(num)
        _, _, digest = read_state(f)
        if kind == "global":
            if rnd in digests:
                if digest != digests[rnd]:
                    fail("%s holds model %s, its round's row says %s" % (name, digest[:16],
                                                                        digests[rnd][:16]))
            elif rnd == last + 1:
                orphan = True
            else:
                fail("%s has no row and is not the next round's (last committed: %d)" % (name, last))
    if not os.path.exists(os.path.join(ckdir, "global-%06d.dfs" % last)):
        fail("the last committed round %d has no global checkpoint" % last)
    if not os.path.exists(os.path.join(ckdir, "strategy-%06d.dfs" % last)):
        fail("the last committed round %d has no strategy checkpoint" % last)
    if save:
        with open(save, "w") as f:
            json.dump(rows, f)
    print(json.dumps({"last": last, "orphan": orphan, "checkpoints": len(files),
                      "temporary": len(leftovers)}))


def dumped(dump_dir, r, kind):
    """(site, num_examples, delta bytes) of a site's dump round-r<kind> (site.debug_dump_updates:
    kind "" = acknowledged, ".sent" = the last sent), or None."""
    meta = os.path.join(dump_dir, "round-%d%s.json" % (r, kind))
    if not os.path.exists(meta):
        return None
    m = json.load(open(meta))
    _, delta, _ = read_state(os.path.join(dump_dir, "round-%d%s.dfs" % (r, kind)))
    return m["site"], m["num_examples"], delta


def check_fedavg(state, dump_dirs, rounds):
    import numpy as np

    rows = {r[0]: r for r in rounds_of(state)}
    ck = os.path.join(state, "checkpoints")
    # (site, round) of every upload the coordinator accepted, by its audit log.
    accepted = set()
    audit = os.path.join(state, "audit.log")
    if os.path.exists(audit):
        for line in open(audit):
            try:
                e = json.loads(line)
            except ValueError:
                continue  # a line cut by a kill
            if e.get("action") == "upload" and e.get("outcome") == "ok":
                accepted.add((e.get("site"), e.get("round")))
    if rounds is None:
        rounds = [r for r in sorted(rows) if r > 0 and
                  os.path.exists(os.path.join(ck, "global-%06d.dfs" % r)) and
                  os.path.exists(os.path.join(ck, "global-%06d.dfs" % (r - 1)))]
    for r in rounds:
        manifest, prev, _ = read_state(os.path.join(ck, "global-%06d.dfs" % (r - 1)))
        _, cur, _ = read_state(os.path.join(ck, "global-%06d.dfs" % r))
        updates = [u for u in (dumped(d, r, "") for d in dump_dirs) if u]
        if rows[r][3] > len(updates):
            acked = {u[0] for u in updates}
            for u in (dumped(d, r, ".sent") for d in dump_dirs):
                if not u or u[0] in acked or (u[0], r) not in accepted:
                    continue
                updates.append(u)
                print("round %d: %s's update was accepted (audit log) but never acknowledged: the "
                      "coordinator went away before answering; counting what it sent" % (r, u[0]))
        sites = sorted(u[0] for u in updates)
        if rows[r][3] != len(updates):
            fail("round %d: sites_reported is %d, but the coordinator acknowledged %d updates (%s)"
                 % (r, rows[r][3], len(updates), sites))
        total = sum(u[1] for u in updates)
        worst = 0.0
        for t in manifest:
            if t["dtype"] not in (1, 2):
                continue  # integer tensors are not aggregated
            dt = np.dtype(DTYPES[t["dtype"]])
            sl = slice(t["offset"], t["offset"] + t["nbytes"])
            want = np.frombuffer(prev[sl], dt).astype(np.float64)
            step = np.zeros_like(want)
            for _, n, delta in updates:
                step += n * np.frombuffer(delta[sl], dt).astype(np.float64)
            want += step / total
            got = np.frombuffer(cur[sl], dt).astype(np.float64)
            err = np.abs(got - want) - 1e-4 * np.abs(want)
            if err.size:
                worst = max(worst, float(np.max(err)))
            if err.size and np.max(err) > 1e-6:
                i = int(np.argmax(err))
                fail("round %d: tensor %s[%d] is %.8g, FedAvg of the acknowledged updates of %s "
                     "gives %.8g" % (r, t["name"], i, got[i], sites, want[i]))
        print("round %d: the global model is FedAvg of the %d acknowledged updates of %s "
              "(worst excess error %.2g)" % (r, len(updates), sites, worst))


def main():
    args = sys.argv[1:]
    if len(args) >= 2 and args[0] == "state":
        before = save = None
        rest = args[2:]
        while rest:
            if rest[0] == "--before":
                before = rest[1]
            elif rest[0] == "--save":
                save = rest[1]
            else:
                fail("unknown argument %s" % rest[0])
            rest = rest[2:]
        check_state(args[1], before, save)
    elif len(args) >= 3 and args[0] == "fedavg":
        rounds = None
        dumps = []
        rest = args[2:]
        while rest:
            if rest[0] == "--rounds":
                rounds = [int(x) for x in rest[1].split(",")]
                rest = rest[2:]
            else:
                dumps.append(rest[0])
                rest = rest[1:]
        check_fedavg(args[1], dumps, rounds)
    else:
        fail(__doc__)


if __name__ == "__main__":
    main()
