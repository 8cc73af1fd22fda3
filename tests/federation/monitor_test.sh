#!/usr/bin/env bash
# The researcher-facing monitor service, through the dermfed CLI against a real coordinator
# and two real site daemons on loopback, all on mutual TLS with a throwaway consortium PKI
# (the CLI as admin-1):
#   - pause before the first round: no round starts while paused, status says "paused";
#     resume: the rounds run; stop: the federation ends at once, completed rounds are kept,
#     the sites are told it is over and exit 0, and the coordinator exits 0;
#   - watch follows the event stream live (joins, round starts, updates, evaluations, pause,
#     resume, stop) and ends by itself when the federation does;
#   - status, rounds and sites report what the coordinator's database and logs say;
#   - download writes a RUN folder whose model is the round's checkpoint (same SHA-256) and
#     that `dermfed eval` uses;
#   - a download broken mid-stream (a proxy resets the connection after 60 MB of a ~94 MB
#     ResNet-50 model) resumes from where it stopped: the model arrives whole, and the bytes
#     sent are far fewer than a restart from zero would take.
#
# The federation is configured for 1000 rounds so that stop lands while it runs.
#
# usage: monitor_test.sh DERMFED DERMFED_COORDINATOR DERMFED_SITE
# (DERMFED_TEST_KEEP=1 keeps the work folder and its logs.)
set -uo pipefail
DERMFED="$1"
COORDINATOR="$2"
SITE="$3"
HERE="$(cd "$(dirname "$0")" && pwd)"
PY=/usr/bin/python3
# shellcheck source=../harness.sh
source "$(cd "$(dirname "$0")/.." && pwd)/harness.sh"
harness_start monitor
START=$(date +%s)

# start_coordinator NAME ARGS...: starts it with a port file; sets COORD_PID and ADDR.
start_coordinator() {
  local name="$1"
  shift
  local port_file="$WORK/$name.port"
  "$COORDINATOR" --server.listen=127.0.0.1:0 --server.port_file="$port_file" \
    --server.threads=1 --tls.ca="$PKI/ca/ca.crt" --tls.cert="$PKI/coordinator/coordinator.crt" \
    --tls.key="$PKI/coordinator/coordinator.key" --tls.crl="$PKI/crl/crl.pem" "$@" >"$WORK/logs/$name.out" 2>"$WORK/logs/$name.log" &
  COORD_PID=$!
  PIDS+=("$COORD_PID")
  wait_for 60 "$name did not listen" test -s "$port_file"
  ADDR="127.0.0.1:$(cat "$port_file")"
}
events() { grep -c "\"kind\":\"$1\"" "$WORK/watch.jsonl" 2>/dev/null || true; }
has_event() { [ "$(events "$1")" -ge "${2:-1}" ]; }

PKI="$WORK/pki"
bash "$HERE/../../certs/make-test-pki.sh" "$PKI" --sites 2 >"$WORK/logs/pki.log" 2>&1 ||
  fail "make-test-pki.sh failed"
export DERMFED_CA="$PKI/ca/ca.crt" DERMFED_CERT="$PKI/admin/admin-1.crt" \
  DERMFED_KEY="$PKI/admin/admin-1.key"

"$DERMFED" datagen --format pad-ufes-20 --out "$WORK/data" --images 120 --image-size 32 \
  --seed 5 >"$WORK/logs/datagen.log" 2>&1 || fail "datagen failed"
"$DERMFED" partition --data "$WORK/data" --format pad-ufes-20 --sites 2 --scheme iid --seed 1 \
  --out "$WORK/sites" >"$WORK/logs/partition.log" 2>&1 || fail "partition failed"

# ---- a federation, watched and controlled ----
start_coordinator coordinator --federation.rounds=1000 --federation.min_sites=2 \
  --federation.expected_sites=2 --federation.round_deadline_s=60 \
  --federation.eval_deadline_s=60 --model.backbone=tiny --model.image_size=32 \
  --training.batch_size=8 --server.state_dir="$WORK/state" --server.export_dir="$WORK/export" \
  --server.keep_checkpoints=0
export DERMFED_COORDINATOR="$ADDR"

"$DERMFED" watch --json >"$WORK/watch.jsonl" 2>"$WORK/logs/watch.log" &
WATCH_PID=$!
PIDS+=("$WATCH_PID")

"$DERMFED" pause --reason "checking the sites first" >"$WORK/pause.txt" 2>&1 ||
  fail "pause failed: $(cat "$WORK/pause.txt")"
wait_for 30 "no 'paused' event after pause" has_event PAUSED

SITE_PIDS=()
for s in 1 2; do
  "$SITE" --site.name="site-$s" --site.coordinator="$ADDR" --site.data="$WORK/sites/site-$s" \
    --site.threads=1 --site.workers=1 --site.seed="$s" --site.max_backoff_s=1 \
    --site.ca="$PKI/ca/ca.crt" --site.cert="$PKI/site/site-$s.crt" \
    --site.key="$PKI/site/site-$s.key" >"$WORK/logs/site-$s.log" 2>&1 &
  SITE_PIDS+=($!)
  PIDS+=($!)
done
wait_for 60 "the sites did not join" has_event SITE_JOINED 2
sleep 2  # long enough for a round to start, were the pause ignored
has_event ROUND_STARTED && fail "a round started while the federation was paused"
"$DERMFED" status >"$WORK/status-paused.txt" 2>&1 || fail "status failed: $(cat "$WORK/status-paused.txt")"
grep -q "^state *paused, round 0 of 1000" "$WORK/status-paused.txt" ||
  fail "status while paused says: $(cat "$WORK/status-paused.txt")"
grep -q "2 known" "$WORK/status-paused.txt" || fail "status does not count 2 sites"
"$DERMFED" sites --json >"$WORK/sites-paused.jsonl" || fail "sites failed"
[ "$(grep -c '"status":"idle"' "$WORK/sites-paused.jsonl")" -eq 2 ] ||
  fail "both sites should be idle while paused: $(cat "$WORK/sites-paused.jsonl")"
[ "$("$DERMFED" rounds --json | wc -l)" -eq 1 ] || fail "rounds should list only round 0 while paused"

"$DERMFED" resume --reason "go" >"$WORK/resume.txt" 2>&1 || fail "resume failed"
grep -q "^resumed" "$WORK/resume.txt" || fail "resume says: $(cat "$WORK/resume.txt")"
wait_for 120 "round 2 was not evaluated after resume" has_event ROUND_EVALUATED 2
echo "paused, resumed, 2 rounds evaluated ($(( $(date +%s) - START )) s in)"

# status, rounds and sites agree with what happened.
"$DERMFED" rounds --json >"$WORK/rounds.jsonl" || fail "rounds failed"
"$DERMFED" rounds >"$WORK/rounds.txt" || fail "rounds (table) failed"
"$DERMFED" sites --json >"$WORK/sites.jsonl" || fail "sites failed"
"$DERMFED" status --json >"$WORK/status.json" || fail "status --json failed"
"$DERMFED" download --version 1 --out "$WORK/run-1" --json >"$WORK/download-1.json" 2>&1 ||
  fail "download failed: $(cat "$WORK/download-1.json")"
"$DERMFED" eval --model "$WORK/run-1" --data "$WORK/sites/site-1" --format pad-ufes-20 \
  --workers 1 --threads 1 --metrics-out "$WORK/eval-1.json" >"$WORK/logs/eval.log" 2>&1 ||
  fail "dermfed eval cannot use the downloaded model: $(tail -n 5 "$WORK/logs/eval.log")"

"$DERMFED" stop --reason "enough" >"$WORK/stop.txt" 2>&1 || fail "stop failed"
grep -q "^stopping" "$WORK/stop.txt" || fail "stop says: $(cat "$WORK/stop.txt")"
for _ in $(seq 300); do kill -0 "$COORD_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$COORD_PID" 2>/dev/null && fail "the coordinator still runs 30 s after stop"
wait "$COORD_PID" || fail "the stopped coordinator exited with $?"
for i in 0 1; do
  for _ in $(seq 300); do kill -0 "${SITE_PIDS[$i]}" 2>/dev/null || break; sleep 0.1; done
  kill -0 "${SITE_PIDS[$i]}" 2>/dev/null && fail "site-$((i + 1)) still runs 30 s after stop"
  wait "${SITE_PIDS[$i]}" || fail "site-$((i + 1)) exited with $? after stop"
done
for _ in $(seq 100); do kill -0 "$WATCH_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$WATCH_PID" 2>/dev/null && fail "watch did not end with the federation"
wait "$WATCH_PID" || fail "watch exited with $?: $(cat "$WORK/logs/watch.log")"

"$PY" - "$WORK" <<'PY' || fail "monitor output check failed"
import json, os, sqlite3, sys
work = sys.argv[1]
def lines(name):
    return [json.loads(l) for l in open(os.path.join(work, name)) if l.strip()]
events = lines("watch.jsonl")
kinds = [e["kind"] for e in events]
seqs = [int(e["seq"]) for e in events]
assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), "event numbers not increasing"
for k in ["PAUSE_REQUESTED", "PAUSED", "SITE_JOINED", "RESUMED", "ROUND_STARTED",
          "UPDATE_RECEIVED", "ROUND_AGGREGATED", "SITE_EVALUATED", "ROUND_EVALUATED", "STOPPED"]:
    assert k in kinds, "watch never saw %s: %s" % (k, kinds)
assert "FEDERATION_DONE" not in kinds, "a stopped federation must not say it is done"
assert kinds.index("RESUMED") < kinds.index("ROUND_STARTED"), "a round started before resume"
updates = [e for e in events if e["kind"] == "UPDATE_RECEIVED"]
assert {e["site"] for e in updates} == {"site-1", "site-2"}, "updates from %s" % updates
assert all("loss" in e["metrics"] for e in updates), "updates carry no training loss"

with sqlite3.connect(os.path.join(work, "state", "coordinator.db")) as c:
    db_rounds = c.execute("SELECT round, digest, sites_reported FROM rounds ORDER BY round").fetchall()
rounds = lines("rounds.jsonl")
got = [(int(r["round"]), r["model_sha256_hex"], r["sites_reported"]) for r in rounds]
assert got == db_rounds[:len(got)], "rounds says %s, the database %s" % (got, db_rounds)
assert len(got) >= 3, "rounds lists %d rows after round 2 was evaluated" % len(got)
r2 = json.loads(rounds[2]["metrics_json"])
evaluated = [e for e in events if e["kind"] == "ROUND_EVALUATED" and int(e["round"]) == 2][0]
assert abs(r2["balanced_accuracy"] - evaluated["metrics"]["balanced_accuracy"]) < 1e-9

sites = {s["name"]: s for s in lines("sites.jsonl")}
assert set(sites) == {"site-1", "site-2"}, sites
for s in sites.values():
    assert int(s["rounds_contributed"]) >= 2, s
    assert int(s["train_rows"]) > 0, s
status = json.load(open(os.path.join(work, "status.json")))
assert status["spec"]["backbone"] == "tiny" and status["rounds_total"] == "1000", status
assert status["sites_known"] == 2, status

download = json.load(open(os.path.join(work, "download-1.json")))
assert download["model_version"] == 1, download
assert download["sha256"] == db_rounds[1][1], "downloaded %s, round 1's checkpoint is %s" % (
    download["sha256"], db_rounds[1][1])
stop = open(os.path.join(work, "stop.txt")).read()
last_before_stop = int(stop.split("the last completed round is ")[1].split()[0])
assert db_rounds[-1][0] <= last_before_stop + 1, \
    "rounds ran on after stop (last completed %d): %s" % (last_before_stop, db_rounds[-1])
print("events:", len(events), "rounds committed:", [r[0] for r in db_rounds])
PY
echo "status/rounds/sites/watch/download/pause/resume/stop checked ($(( $(date +%s) - START )) s in)"

# ---- a broken download resumes ----
start_coordinator big --federation.rounds=1 --federation.min_sites=1 \
  --federation.join_timeout_s=600 --model.backbone=resnet50 --model.image_size=32 \
  --server.state_dir="$WORK/state-big"
"$PY" "$HERE/recording_proxy.py" --upstream "$ADDR" --port-file "$WORK/proxy.port" \
  --cut-down-after 60000000 --stats "$WORK/proxy.json" >"$WORK/logs/proxy.log" 2>&1 &
PIDS+=($!)
wait_for 30 "the proxy did not listen" test -s "$WORK/proxy.port"
"$DERMFED" status --coordinator "$ADDR" --json >"$WORK/status-big.json" || fail "status (big) failed"
"$DERMFED" download --coordinator "127.0.0.1:$(cat "$WORK/proxy.port")" --out "$WORK/run-big" \
  --json >"$WORK/download-big.json" 2>"$WORK/logs/download-big.log" ||
  fail "the broken download did not resume: $(cat "$WORK/logs/download-big.log")"
"$PY" - "$WORK" <<'PY' || fail "resumed download check failed"
import json, os, sys
work = sys.argv[1]
status = json.load(open(os.path.join(work, "status-big.json")))
download = json.load(open(os.path.join(work, "download-big.json")))
proxy = json.load(open(os.path.join(work, "proxy.json")))
print("model %d bytes; proxy: %s" % (download["bytes"], proxy))
assert download["bytes"] > 80e6, "the test needs a model well above the cut: %s" % download
assert download["sha256"] == status["model_sha256_hex"], "the resumed model differs"
assert proxy["cuts"] == 1 and proxy["connections"] >= 2, "the download was not broken: %s" % proxy
assert proxy["down_bytes"] < 1.3 * download["bytes"], \
    "%d bytes sent for a %d-byte model: restarted, not resumed" % (proxy["down_bytes"], download["bytes"])
PY
kill "$COORD_PID" 2>/dev/null
echo "PASS ($(( $(date +%s) - START )) s)"
