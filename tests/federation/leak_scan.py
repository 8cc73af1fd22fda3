#!/usr/bin/python3
"""Looks for a site's data in the bytes it sent, for no_data_leaves_site_test.

    leak_scan.py --recording UP.bin --site-dir DIR --min-bytes N --must-contain NAME

Fails (exit 1) when
  - any 32-byte window of any file under DIR (images and metadata.csv) occurs in the
    recording; windows of one repeated byte (zero padding) are ignored, they prove nothing;
  - any distinctive string of DIR/metadata.csv occurs in it: every patient_id, every
    patient_lesion pair ("PAT_9_11"), every img_id with and without its extension, and every
    other non-numeric cell value of 6 or more characters (rare field values such as a
    parent's country of origin; shorter ones like "NOSE" could match model bytes by chance);
  - the recording is smaller than --min-bytes (the model updates the site had to send), or
    does not contain --must-contain (the site's name, which the site puts in every request
    body in the clear): both show the recording really is this site's gRPC traffic, so that
    an empty or unrelated recording cannot pass.
Before scanning, it checks itself: a copy of the recording with 40 bytes of one image (and,
separately, one patient id) spliced in must be reported, or the scanner is broken.
"""
import argparse
import csv
import os
import sys

BLOCK = 16   # index granularity; any common run of 2*BLOCK bytes contains an aligned block
WINDOW = 32


def index_files(paths):
    """Maps every BLOCK-aligned, not-all-one-byte block of each file to (path, offset)."""
    index = {}
    contents = {}
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        contents[path] = data
        for off in range(0, len(data) - BLOCK + 1, BLOCK):
            block = data[off:off + BLOCK]
            if block.count(block[0]) == BLOCK:
                continue
            index.setdefault(block, []).append((path, off))
    return index, contents


def window_leaks(recording, index, contents, limit=5):
    """(path, file offset, recording offset) of common runs of >= WINDOW bytes."""
    hits = []
    get = index.get
    for i in range(len(recording) - BLOCK + 1):
        candidates = get(recording[i:i + BLOCK])
        if not candidates:
            continue
        for path, off in candidates:
            data = contents[path]
            # Extend the block match both ways.
            left = 0
            while (left < WINDOW and off - left - 1 >= 0 and i - left - 1 >= 0
                   and data[off - left - 1] == recording[i - left - 1]):
                left += 1
            right = BLOCK
            while (left + right < WINDOW and off + right < len(data) and i + right < len(recording)
                   and data[off + right] == recording[i + right]):
                right += 1
            if left + right >= WINDOW:
                hits.append((path, off - left, i - left))
                if len(hits) >= limit:
                    return hits
    return hits


def distinctive_strings(metadata_csv):
    out = set()
    with open(metadata_csv, newline="") as f:
        for row in csv.DictReader(f):
            if row.get("patient_id") and row.get("lesion_id"):
                out.add("%s_%s" % (row["patient_id"].strip(), row["lesion_id"].strip()))
            for key, value in row.items():
                value = (value or "").strip()
                if key == "patient_id" and value:
                    out.add(value)
                elif key == "img_id" and value:
                    out.add(value)
                    out.add(os.path.splitext(value)[0])
                elif len(value) >= 6:
                    try:
                        float(value)
                    except ValueError:
                        out.add(value)
    return sorted(out)


def string_leaks(recording, strings):
    return [s for s in strings if recording.find(s.encode()) >= 0]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--recording", required=True)
    p.add_argument("--site-dir", required=True)
    p.add_argument("--min-bytes", type=int, required=True)
    p.add_argument("--must-contain", required=True)
    a = p.parse_args()

    with open(a.recording, "rb") as f:
        recording = f.read()
    files = []
    for root, _, names in os.walk(a.site_dir, followlinks=True):
        files += [os.path.join(root, n) for n in sorted(names)]
    images = [f for f in files if f.lower().endswith((".png", ".jpg", ".jpeg"))]
    metadata = os.path.join(a.site_dir, "metadata.csv")
    if not images or not os.path.exists(metadata):
        sys.exit("FAIL: %s has no images or no metadata.csv" % a.site_dir)
    index, contents = index_files(files)
    strings = distinctive_strings(metadata)
    examples = [s for s in strings if s.startswith("PAT")][:3] + strings[:3]
    print("recording: %d bytes; site data: %d files, %d bytes, %d distinctive strings "
          "(e.g. %s)" % (len(recording), len(files), sum(len(c) for c in contents.values()),
                         len(strings), ", ".join(examples)))

    # Self-check: the scanner must see a planted leak of either kind.
    img = contents[images[0]]
    planted = recording[:len(recording) // 2] + img[100:140] + recording[len(recording) // 2:]
    if not window_leaks(planted, index, contents, limit=1):
        sys.exit("FAIL: self-check: 40 planted bytes of %s were not found" % images[0])
    if not string_leaks(recording + strings[0].encode(), strings[:1]):
        sys.exit("FAIL: self-check: a planted metadata string was not found")

    failures = []
    if len(recording) < a.min_bytes:
        failures.append("the recording has %d bytes, less than the %d of model updates the site "
                        "must have sent: it is not the site's traffic" % (len(recording), a.min_bytes))
    if recording.find(a.must_contain.encode()) < 0:
        failures.append("the recording never names the site '%s': it is not the site's traffic"
                        % a.must_contain)
    for path, off, at in window_leaks(recording, index, contents):
        failures.append("%d bytes of %s (from its byte %d) were sent, at byte %d of the stream"
                        % (WINDOW, path, off, at))
    for s in string_leaks(recording, strings):
        failures.append("metadata value %r was sent" % s)
    for f in failures:
        print("FAIL: " + f)
    if failures:
        sys.exit(1)
    print("PASS: no 32-byte window of %d files and none of %d metadata strings in %d bytes sent"
          % (len(files), len(strings), len(recording)))


if __name__ == "__main__":
    main()
