#!/usr/bin/env bash
# The coordinator's HTTPS face against a real federation (a coordinator and two site daemons
# on loopback, mutual TLS, a throwaway PKI):
#   - /metrics, scraped while the federation runs and parsed by Prometheus' own parser, has
#     rounds completed, round duration, sites connected, bytes in and out, aggregation time,
#     rejected updates by reason and the sites' training loss, with values that agree with
#     what happened (rounds, sites, model size);
#   - the JSON API (/api/v1/status, rounds, sites, events, models) agrees with the CLI's
#     monitor service and with the checkpoints; the event long poll returns new events;
#   - who gets in: researcher and admin certificates and the token (header or /login cookie)
#     do; no credentials, a wrong token, a site certificate, a revoked certificate do not,
#     and a certificate of another CA fails the TLS handshake;
#   - with DERMFED_LOG_FORMAT=json every coordinator log line is a JSON object, and the lines
#     about an update carry its site, round and model version as fields.
#
# usage: http_api_test.sh DERMFED DERMFED_COORDINATOR DERMFED_SITE CERTS_DIR
set -uo pipefail
DERMFED="$1"
COORDINATOR="$2"
SITE="$3"
CERTS="$4"
PY=/usr/bin/python3
# shellcheck source=../harness.sh
source "$(cd "$(dirname "$0")/.." && pwd)/harness.sh"
harness_start http-api

PKI="$WORK/pki"
bash "$CERTS/make-test-pki.sh" "$PKI" --sites 2 >"$WORK/logs/pki.log" 2>&1 || fail "make-test-pki.sh failed"
openssl rand -hex 32 >"$WORK/token" && chmod 600 "$WORK/token"
"$DERMFED" datagen --format pad-ufes-20 --out "$WORK/data" --images 120 --image-size 32 \
  --seed 5 >"$WORK/logs/datagen.log" 2>&1 || fail "datagen failed"
"$DERMFED" partition --data "$WORK/data" --format pad-ufes-20 --sites 2 --scheme iid --seed 1 \
  --out "$WORK/sites" >"$WORK/logs/partition.log" 2>&1 || fail "partition failed"

ROUNDS=200  # stopped by the test once it has seen enough
DERMFED_LOG_FORMAT=json "$COORDINATOR" --server.listen=127.0.0.1:0 --server.port_file="$WORK/grpc.port" \
  --http.listen=127.0.0.1:0 --http.port_file="$WORK/http.port" --http.token_file="$WORK/token" \
  --server.threads=1 --tls.ca="$PKI/ca/ca.crt" --tls.cert="$PKI/coordinator/coordinator.crt" \
  --tls.key="$PKI/coordinator/coordinator.key" --tls.crl="$PKI/crl/crl.pem" \
  --federation.rounds=$ROUNDS --federation.min_sites=2 --federation.expected_sites=2 \
  --federation.round_deadline_s=60 --federation.eval_deadline_s=60 --model.backbone=tiny \
  --model.image_size=32 --training.batch_size=8 --server.state_dir="$WORK/state" \
  >"$WORK/logs/coordinator.out" 2>"$WORK/logs/coordinator.log" &
COORD_PID=$!
PIDS+=("$COORD_PID")
for _ in $(seq 600); do [ -s "$WORK/http.port" ] && [ -s "$WORK/grpc.port" ] && break; sleep 0.1; done
[ -s "$WORK/http.port" ] || fail "the coordinator did not start its HTTPS server"
for s in 1 2; do
  "$SITE" --site.name="site-$s" --site.coordinator="127.0.0.1:$(cat "$WORK/grpc.port")" \
    --site.data="$WORK/sites/site-$s" --site.threads=1 --site.workers=1 --site.seed="$s" \
    --site.max_backoff_s=1 --site.ca="$PKI/ca/ca.crt" --site.cert="$PKI/site/site-$s.crt" \
    --site.key="$PKI/site/site-$s.key" >"$WORK/logs/site-$s.log" 2>&1 &
  PIDS+=($!)
done

DERMFED_CA="$PKI/ca/ca.crt" DERMFED_CERT="$PKI/researcher/researcher-1.crt" \
DERMFED_KEY="$PKI/researcher/researcher-1.key" DERMFED_COORDINATOR="127.0.0.1:$(cat "$WORK/grpc.port")" \
"$PY" - "$WORK" "$PKI" "$(cat "$WORK/http.port")" "$DERMFED" "$ROUNDS" <<'PY' || fail "HTTPS API check failed"
import json, math, os, socket, ssl, subprocess, sys, time, urllib.error, urllib.request
from prometheus_client.parser import text_string_to_metric_families

work, pki, port, dermfed, rounds_total = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
base = f"https://127.0.0.1:{port}"
token = open(os.path.join(work, "token")).read().strip()

def context(role=None, name=None, ca=os.path.join(pki, "ca/ca.crt")):
    ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca/ca.crt"))
    ctx.check_hostname = False  # the coordinator's certificate names its identity, not 127.0.0.1
    if role:
        d = os.path.join(pki, role) if role != "foreign" else os.path.join(pki, "foreign/site")
        ctx.load_cert_chain(os.path.join(d, name + ".crt"), os.path.join(d, name + ".key"))
    return ctx

def get(path, role="researcher", name="researcher-1", headers=None, timeout=30):
    req = urllib.request.Request(base + path, headers=headers or {})
    try:
        with urllib.request.urlopen(req, context=context(role, name), timeout=timeout) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)

def api(path, **kw):
    code, body, _ = get(path, **kw)
    assert code == 200, f"{path}: HTTP {code}: {body}"
    return json.loads(body)

# Wait for round 3's evaluation, so at least three rounds are complete while the
# federation still runs.
deadline = time.time() + 240
while True:
    rounds = api("/api/v1/rounds")["rounds"]
    evaluated = [r for r in rounds if r["metrics"] is not None]
    if len(evaluated) >= 3:
        break
    assert time.time() < deadline, f"only {len(evaluated)} rounds evaluated: {rounds}"
    time.sleep(0.5)

# ---- /metrics, while the federation runs ----
code, text, headers = get("/metrics")
assert code == 200, (code, text)
assert headers["Content-Type"].startswith("text/plain; version=0.0.4"), headers
open(os.path.join(work, "metrics.txt"), "w").write(text)
samples = {}
families = {}
for fam in text_string_to_metric_families(text):
    families[fam.name] = fam.type
    for s in fam.samples:
        samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
def val(name, **labels):
    key = (name, tuple(sorted(labels.items())))
    assert key in samples, f"no sample {key}; have {sorted(samples)}"
    return samples[key]
status = api("/api/v1/status")
completed = status["completed_round"]
assert completed >= 3, status
# The scrape and the status call race with the next round; allow one round in between.
done = val("dermfed_rounds_completed_total")
assert completed - 1 <= done <= completed + 1, (done, completed)
assert families["dermfed_round_duration_seconds"] == "histogram"
assert val("dermfed_round_duration_seconds_count") == done
assert val("dermfed_round_duration_seconds_sum") > 0
assert val("dermfed_round_duration_seconds_bucket", le="+Inf") == done
assert val("dermfed_aggregation_seconds_count") == done
assert val("dermfed_sites_connected") == 2, val("dermfed_sites_connected")
assert val("dermfed_updates_received_total") >= 2 * done
model_bytes = None
for reason in ["stale", "not_selected", "duplicate", "invalid", "too_large", "other"]:
    assert val("dermfed_updates_rejected_total", reason=reason) == 0, reason
# Each round every site uploads one model-sized update and pulls the model twice (train, eval).
bytes_in = val("dermfed_bytes_received_total", kind="update")
bytes_out = val("dermfed_bytes_sent_total", kind="model")
assert bytes_in > 0 and bytes_out >= bytes_in, (bytes_in, bytes_out)
for site in ["site-1", "site-2"]:
    loss = val("dermfed_site_training_loss", site=site)
    assert math.isfinite(loss) and loss > 0, (site, loss)
print(f"/metrics: {done:.0f} rounds, {bytes_in:.0f} bytes in, {bytes_out:.0f} bytes out, "
      f"{len(samples)} samples")

# ---- the JSON API agrees with the monitor service (the CLI) and the checkpoints ----
cli = [json.loads(l) for l in subprocess.run([dermfed, "rounds", "--json"], check=True,
                                              capture_output=True, text=True).stdout.splitlines()]
http = {r["round"]: r for r in api("/api/v1/rounds")["rounds"]}
for r in cli:
    h = http[int(r["round"])]
    assert h["model_sha256"] == r["model_sha256_hex"], (h, r)
    assert h["sites_reported"] == int(r.get("sites_reported", 0)), (h, r)
ev = http[1]["metrics"]
assert len(ev["per_class"]) == len(status["class_names"]) == len(ev["confusion_matrix"])
row = ev["confusion_matrix"][0]
sens = row[0] / sum(row) if sum(row) else None
assert ev["per_class"][0]["sensitivity"] == sens or abs(ev["per_class"][0]["sensitivity"] - sens) < 1e-12
sites = api("/api/v1/sites")["sites"]
assert sorted(s["name"] for s in sites) == ["site-1", "site-2"], sites
assert all(s["rounds_contributed"] >= 3 and s["last_seen_unix_ms"] > 0 for s in sites), sites
models = {m["version"]: m for m in api("/api/v1/models")["models"]}
for v, r in http.items():
    assert models[v]["sha256"] == r["model_sha256"]
assert status["rounds_total"] == rounds_total and status["caller"] == "researcher:researcher-1"
# The long poll: events after the last one arrive when the next round moves.
last = status["last_event_seq"]
t0 = time.time()
events = api(f"/api/v1/events?after={last}&wait_ms=20000", timeout=30)
assert events["events"], events
assert all(e["seq"] > last for e in events["events"]), events
assert time.time() - t0 < 25
everything = api("/api/v1/events?after=0")["events"]
kinds = [e["kind"] for e in everything]
for k in ["site_joined", "round_started", "update_received", "round_aggregated", "round_evaluated"]:
    assert k in kinds, (k, kinds)
code, body, _ = get("/api/v1/events?after=-1")
assert code == 400, (code, body)

# ---- who gets in ----
def code_of(path, **kw):
    return get(path, **kw)[0]
assert code_of("/api/v1/status", role=None) == 401
assert code_of("/metrics", role=None) == 401
assert code_of("/api/v1/status", role=None, headers={"Authorization": "Bearer " + token}) == 200
assert code_of("/metrics", role=None, headers={"Authorization": "Bearer " + token}) == 200
assert code_of("/api/v1/status", role=None, headers={"Authorization": "Bearer " + "x" * 64}) == 401
assert code_of("/api/v1/status", role="admin", name="admin-1") == 200
code, body, _ = get("/api/v1/status", role="site", name="site-1")
assert code == 403 and "site" in body, (code, body)
code, body, _ = get("/api/v1/status", role="site", name="site-revoked")
assert code == 401 and "revoked" in body, (code, body)
# /login sets the cookie a browser then sends.
opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context()),
                                     urllib.request.HTTPCookieProcessor())
with opener.open(base + "/login?token=" + token) as r:
    assert r.status == 200 and "<html" in r.read().decode().lower()  # redirected to the page
with opener.open(base + "/api/v1/status") as r:
    assert json.loads(r.read())["caller"] == "token"
assert code_of("/login?token=wrong", role=None) == 401
# The page and its scripts carry no data: served to anyone past the handshake, with a CSP.
code, body, headers = get("/", role=None)
assert code == 200 and "default-src 'self'" in headers["Content-Security-Policy"], headers
assert get("/static/chart.min.js", role=None)[0] == 200
# A certificate from another CA never completes the handshake.
try:
    get("/api/v1/status", role="foreign", name="site-1")
    raise AssertionError("a foreign CA's certificate was accepted")
except (ssl.SSLError, urllib.error.URLError, ConnectionResetError) as e:
    pass
# TLS 1.2 is refused.
ctx = context()
ctx.maximum_version = ssl.TLSVersion.TLSv1_2
try:
    with socket.create_connection(("127.0.0.1", port)) as sock, ctx.wrap_socket(sock) as s:
        raise AssertionError("TLS 1.2 was accepted")
except ssl.SSLError:
    pass
print("HTTPS API: status, rounds, sites, models and events agree; access control holds")
PY

# ---- JSON logs ----
DERMFED_CA="$PKI/ca/ca.crt" DERMFED_CERT="$PKI/admin/admin-1.crt" DERMFED_KEY="$PKI/admin/admin-1.key" \
  "$DERMFED" stop --coordinator "127.0.0.1:$(cat "$WORK/grpc.port")" --reason "test over" \
  >"$WORK/logs/stop.log" 2>&1 || fail "stop failed"
wait "$COORD_PID" || fail "the coordinator exited with $?"
"$PY" - "$WORK/logs/coordinator.log" <<'PY' || fail "JSON log check failed"
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
objs = []
for i, l in enumerate(lines, 1):
    try:
        objs.append(json.loads(l))
    except ValueError:
        raise AssertionError(f"log line {i} is not JSON: {l!r}")
for o in objs:
    assert {"ts", "level", "component", "msg"} <= o.keys(), o
folded = [o for o in objs if "folded" in o["msg"]]
assert len(folded) >= 2, "no update lines"
for o in folded:
    assert o["site"] in ("site-1", "site-2") and isinstance(o["round"], int) and isinstance(o["version"], int), o
print(f"{len(objs)} JSON log lines; {len(folded)} update lines carry site, round and version")
PY
echo "PASS"
