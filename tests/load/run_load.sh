#!/usr/bin/env bash
# Load (issue 7): SITES simulated sites against one real dermfed-coordinator (tiny model, FedAvg,
# federated evaluation every round) for ROUNDS rounds, over mutual TLS with one site
# certificate per simulated site. The sites are threads of tests/load/load_sites (the real
# FederationClient and protocol; random updates of the model's exact layout instead of
# training, see load_sites.cc and README.md). Prints one JSON summary on stdout:
#   per round: wall time (first TRAIN task to last evaluation report), the coordinator's own
#   round time (store: started..finished), updates and evaluations accepted, the coordinator's
#   RSS (max during the round, and when its last evaluation report was accepted), model bytes
#   pulled and pushed; totals, including the coordinator's /metrics byte counters.
#
# usage: run_load.sh [--sites N] [--rounds R] [--secagg] [--check] [--out FILE] [--bin DIR]
#                    [--pki-cache DIR]
#   --check   fail (exit 1) unless every round aggregated N updates and N evaluations, every
#             site finished, nothing was refused, and the coordinator's memory stays bounded:
#             its RSS after the last round is at most 1.2 x its RSS after round 1 + 64 MiB
#             (up to 5 rounds), or 1.1 x its RSS half way + 16 MiB (longer runs: glibc keeps
#             freed upload buffers for a while, so RSS rises over the first rounds, then levels)
#   --bin     folder with dermfed-coordinator and load_sites (default $BUILD_DIR/bin or build/bin)
#   --pki-cache DIR  keep the test PKI (one certificate per site; certs/make-test-pki.sh takes
#             about a minute for 100 sites) in DIR and reuse it on the next run
# Environment: DERMFED_TEST_KEEP=1 keeps the work folder (logs, state, PKI).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SITES=100
ROUNDS=20
SECAGG=false
CHECK=0
OUT=""
PKI_CACHE=""
BIN="${BUILD_DIR:-$ROOT/build}/bin"
while [ $# -gt 0 ]; do
  case "$1" in
    --sites) SITES="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --secagg) SECAGG=true; shift ;;
    --check) CHECK=1; shift ;;
    --out) OUT="$2"; shift 2 ;;
    --bin) BIN="$2"; shift 2 ;;
    --pki-cache) PKI_CACHE="$2"; shift 2 ;;
    *) echo "usage: $0 [--sites N] [--rounds R] [--secagg] [--check] [--out FILE] [--bin DIR] [--pki-cache DIR]" >&2
       exit 2 ;;
  esac
done
COORDINATOR="$BIN/dermfed-coordinator"
LOAD="$BIN/load_sites"
for b in "$COORDINATOR" "$LOAD"; do [ -x "$b" ] || { echo "run_load.sh: $b not built" >&2; exit 2; }; done
PY=/usr/bin/python3
# The summary is the only thing on stdout; progress and, on failure, the logs go to stderr.
exec 3>&1 1>&2
# shellcheck source=../harness.sh
source "$ROOT/tests/harness.sh"
harness_start load

PKI="${PKI_CACHE:-$WORK/pki}"
t0=$(date +%s.%N)
bash "$ROOT/certs/make-test-pki.sh" "$PKI" --sites "$SITES" >"$WORK/logs/pki.log" 2>&1 ||
  fail "make-test-pki.sh failed"
echo "load: PKI for $SITES sites in $(echo "$(date +%s.%N) - $t0" | bc) s" >&2
openssl rand -hex 32 >"$WORK/token" && chmod 600 "$WORK/token"

"$COORDINATOR" --server.listen=127.0.0.1:0 --server.port_file="$WORK/port" \
  --server.state_dir="$WORK/state" --server.threads=1 --federation.rounds="$ROUNDS" \
  --federation.min_sites="$SITES" --federation.join_timeout_s=600 \
  --federation.round_deadline_s=900 --federation.eval_deadline_s=900 \
  --security.secure_aggregation="$SECAGG" --security.secagg_phase_deadline_s=900 \
  --model.backbone=tiny --model.image_size=64 \
  --tls.ca="$PKI/ca/ca.crt" --tls.cert="$PKI/coordinator/coordinator.crt" \
  --tls.key="$PKI/coordinator/coordinator.key" --tls.crl="$PKI/crl/crl.pem" \
  --http.listen=127.0.0.1:0 --http.port_file="$WORK/http.port" --http.token_file="$WORK/token" \
  >"$WORK/logs/coordinator.out" 2>"$WORK/logs/coordinator.log" &
COORD_PID=$!
PIDS+=("$COORD_PID")
wait_for 120 "the coordinator did not listen" test -s "$WORK/port" -a -s "$WORK/http.port"

# The coordinator's /metrics, scraped every second (it exits 2 s after its last round).
scrape() {
  curl -sk --max-time 2 -H "Authorization: Bearer $(cat "$WORK/token")" \
    "https://127.0.0.1:$(cat "$WORK/http.port")/metrics" >"$WORK/metrics.tmp" 2>/dev/null &&
    grep -q dermfed_bytes "$WORK/metrics.tmp" && mv "$WORK/metrics.tmp" "$WORK/metrics.txt"
}
(while kill -0 "$COORD_PID" 2>/dev/null; do scrape; sleep 1; done) &
SCRAPER=$!

"$LOAD" --coordinator "127.0.0.1:$(cat "$WORK/port")" --sites "$SITES" --pki "$PKI" \
  --coordinator-pid "$COORD_PID" --report "$WORK/load.json" 2>"$WORK/logs/load_sites.log"
LOAD_RC=$?
scrape
for _ in $(seq 300); do kill -0 "$COORD_PID" 2>/dev/null || break; sleep 0.1; done
wait "$COORD_PID"
COORD_RC=$?
kill "$SCRAPER" 2>/dev/null
wait "$SCRAPER" 2>/dev/null
[ -s "$WORK/load.json" ] || fail "load_sites wrote no report (exit $LOAD_RC)"

"$PY" - "$WORK" "$SITES" "$ROUNDS" "$CHECK" "$LOAD_RC" "$COORD_RC" >"$WORK/summary.json" <<'PY'
import json, re, sqlite3, sys
work, sites, rounds, check, load_rc, coord_rc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \
    sys.argv[4] == "1", int(sys.argv[5]), int(sys.argv[6])
load = json.load(open(f"{work}/load.json"))
db = sqlite3.connect(f"file:{work}/state/coordinator.db?mode=ro", uri=True)
store = {r: (sel, rep, fin - st) for r, sel, rep, st, fin in
         db.execute("SELECT round, sites_selected, sites_reported, started, finished FROM rounds "
                    "WHERE round > 0")}
evaluated = {r: json.loads(m).get("sites_reporting") for r, m in
             db.execute("SELECT round, metrics FROM global_metrics")}
counters = {}
try:
    for line in open(f"{work}/metrics.txt"):
        m = re.match(r'(dermfed_bytes_(?:received|sent)_total)\{kind="([^"]+)"\} (\S+)', line)
        if m:
            counters[f"{m.group(1)}{{{m.group(2)}}}"] = int(float(m.group(3)))
except OSError:
    pass
mib = lambda kb: round(kb / 1024, 1)
per_round = []
for r in load["rounds"]:
    n = r["round"]
    sel, rep, coord_s = store.get(n, (None, None, None))
    per_round.append({
        "round": n, "wall_s": r["wall_s"] and round(r["wall_s"], 3),
        "train_phase_s": r["train_phase_s"] and round(r["train_phase_s"], 3),
        "coordinator_round_s": coord_s and round(coord_s, 3),
        "sites_selected": sel, "sites_reported": rep, "sites_evaluated": evaluated.get(n),
        "updates_accepted": r["updates"], "evaluations_accepted": r["evaluations"],
        "coordinator_rss_max_mib": mib(r["coordinator_rss_max_kb"]),
        "coordinator_rss_end_mib": mib(r["coordinator_rss_end_kb"]),
        "bytes_pulled": r["bytes_pulled"], "bytes_pushed": r["bytes_pushed"],
        "secagg_bytes_up": r["secagg_bytes_up"], "secagg_bytes_down": r["secagg_bytes_down"]})
walls = [r["wall_s"] for r in per_round if r["wall_s"]]
ends = [r["coordinator_rss_end_mib"] for r in per_round]
summary = {
    "sites": sites, "rounds": rounds, "secure_aggregation": load["secure_aggregation"],
    "model_bytes": load["model_bytes"], "seconds_total": round(load["seconds"], 1),
    "round_wall_s": {"min": min(walls, default=None), "median": sorted(walls)[len(walls) // 2] if walls else None,
                     "max": max(walls, default=None)},
    "coordinator_rss_mib": {"start": mib(load["coordinator_rss_start_kb"]),
                            "after_round_1": ends[0] if ends else None,
                            "after_last_round": ends[-1] if ends else None,
                            "peak_hwm": mib(load["coordinator_peak_hwm_kb"])},
    "bytes": {"pulled_by_sites": sum(r["bytes_pulled"] for r in per_round),
              "pushed_by_sites": sum(r["bytes_pushed"] for r in per_round),
              "secagg_up": sum(r["secagg_bytes_up"] for r in per_round),
              "secagg_down": sum(r["secagg_bytes_down"] for r in per_round),
              "coordinator_metrics": counters},
    "sites_done": load["sites_done"], "errors": load["errors"], "first_errors": load["first_errors"],
    "load_sites_exit": load_rc, "coordinator_exit": coord_rc,
    "per_round": per_round}
problems = []
if check:
    if load_rc != 0 or load["sites_done"] != sites:
        problems.append(f"{load['sites_done']} of {sites} sites finished (load_sites exit {load_rc})")
    if coord_rc != 0:
        problems.append(f"the coordinator exited {coord_rc}")
    if load["errors"]:
        problems.append(f"{load['errors']} refusals or errors: {load['first_errors'][:3]}")
    for n in range(1, rounds + 1):
        r = next((x for x in per_round if x["round"] == n), None)
        if r is None or r["sites_reported"] != sites or r["sites_evaluated"] != sites:
            problems.append(f"round {n}: {r and r['sites_reported']} updates aggregated and "
                            f"{r and r['sites_evaluated']} evaluations, expected {sites} each")
    # Bounded memory: what the coordinator holds between rounds does not grow with the rounds.
    # (glibc keeps freed upload buffers in its arenas for a while, so RSS rises over the first
    # rounds and then levels off: a long run is judged on its second half.)
    if len(ends) >= 2 and len(ends) <= 5 and ends[-1] > ends[0] * 1.2 + 64:
        problems.append(f"coordinator RSS grew from {ends[0]} MiB after round 1 to {ends[-1]} MiB "
                        f"after round {len(ends)} (more than 1.2 x + 64 MiB)")
    half = ends[len(ends) // 2 - 1] if len(ends) > 5 else None
    if half is not None and ends[-1] > half * 1.1 + 16:
        problems.append(f"coordinator RSS grew from {half} MiB after round {len(ends) // 2} to "
                        f"{ends[-1]} MiB after round {len(ends)} (more than 1.1 x + 16 MiB)")
    summary["check"] = "passed" if not problems else problems
json.dump(summary, sys.stdout, indent=1)
print()
sys.exit(1 if problems else 0)
PY
RC=$?
cat "$WORK/summary.json" >&3
[ -n "$OUT" ] && cp "$WORK/summary.json" "$OUT"
[ $RC -eq 0 ] || fail "load check failed (see \"check\" above)"
exit 0
