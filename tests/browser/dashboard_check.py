#!/usr/bin/python3
"""Drives headless chromium (tests/browser/cdp.py) against a running coordinator's dashboard
and checks what the page shows against the JSON API (read with a researcher certificate).

usage: dashboard_check.py --url https://127.0.0.1:PORT --token-file F --ca CA --cert C --key K
                          --spki BASE64 --work DIR --dermfed CLI --grpc HOST:PORT
                          --admin-cert C --admin-key K [--screenshot PNG]

A tiny federation finishes a round in well under a second, faster than any page can be compared
with the API; so the checks pause the federation (`dermfed pause`, as an admin) before each
comparison and resume it in between, as an operator would hold a federation to look at it.

Checks, in order:
  - /login?token=... signs the browser in (303 to /, HttpOnly cookie) and the page renders;
  - the charts exist; their x axes are the evaluated rounds of /api/v1/rounds and every point
    equals the API's value (global balanced accuracy, macro AUC, accuracy, loss; per-site
    balanced accuracy; per-class sensitivity/specificity of the latest round; ε per round with
    DP; overall feature importance with explanations); the canvases are painted, with pixels
    of each first dataset's colour;
  - the page shows the federation's state (paused, while it is);
  - the round element's data-round, the sites table (every site, its status), the models table
    (every version with the API's sha256), the confusion matrix (the API's latest matrix);
  - the DP panel and the explanations panel are shown exactly when the API has them;
  - without reloading, the page follows the federation: resumed, another round is evaluated,
    the round element moves on; paused again, the charts have more points and match the API;
  - no uncaught exception, no console error, no failed request, no dashboard error, all along;
  - a browser without the token (fresh context) gets the 401 message and no data.
Screenshots land in --work (and a copy at --screenshot).
"""

import argparse
import json
import os
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cdp  # noqa: E402

FAILURES = []


def fail(msg):
    raise SystemExit("FAIL: " + msg)


def check(cond, msg):
    if not cond:
        fail(msg)


def log(msg):
    print("[%6.1f s] %s" % (time.time() - T0, msg), flush=True)


T0 = time.time()


class Api:
    """GET /api/v1/... with the researcher certificate."""

    def __init__(self, base, ca, cert, key):
        self.base = base.rstrip("/")
        self.ctx = ssl.create_default_context(cafile=ca)
        self.ctx.load_cert_chain(cert, key)

    def get(self, path):
        with urllib.request.urlopen(self.base + "/api/v1/" + path, context=self.ctx, timeout=30) as r:
            check(r.status == 200, "%s: HTTP %d" % (path, r.status))
            return json.loads(r.read().decode("utf-8"))

    def evaluated(self):
        return [r for r in self.get("rounds")["rounds"] if r.get("metrics")]


class Admin:
    """`dermfed pause|resume` with the admin certificate, against the coordinator's gRPC port."""

    def __init__(self, dermfed, addr, ca, cert, key):
        self.argv = [dermfed]
        self.flags = ["--coordinator", addr, "--ca", ca, "--cert", cert, "--key", key]

    def run(self, verb, reason):
        p = subprocess.run(self.argv + [verb, "--reason", reason] + self.flags, capture_output=True,
                           text=True, timeout=60)
        check(p.returncode == 0, "dermfed %s exited with %d: %s" % (verb, p.returncode,
                                                                     (p.stdout + p.stderr).strip()))
        return p.stdout.strip()


def pause(admin, api, why, timeout=60):
    """Pauses the federation and waits until the coordinator is paused: the round in progress is
    finished, evaluated and committed, and nothing moves until resume."""
    admin.run("pause", why)
    deadline = time.time() + timeout
    while api.get("status").get("state") != "paused":
        check(time.time() < deadline, "the coordinator did not pause in %d s (status %s)" %
              (timeout, api.get("status")))
        time.sleep(0.2)
    log("paused (%s)" % why)


def same(a, b):
    """Equal numbers (or both null)."""
    if a is None or b is None:
        return a is None and b is None
    return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(b)))


def same_list(got, want, what):
    check(len(got) == len(want), "%s: %d points on the page, %d in the API" % (what, len(got), len(want)))
    for i, (g, w) in enumerate(zip(got, want)):
        check(same(g, w), "%s[%d]: page %r, API %r" % (what, i, g, w))


# Everything the checks need from the page, read in one evaluation.
PAGE_STATE_JS = r"""
(() => {
  const d = window.dermfedDashboard;
  const charts = {};
  for (const [name, c] of Object.entries(d.charts)) {
    charts[name] = {
      type: c.config.type,
      labels: c.data.labels.slice(),
      datasets: c.data.datasets.map((s) => ({label: s.label, data: s.data.slice(),
                                             color: s.borderColor || s.backgroundColor})),
      visible: c.canvas.offsetParent !== null,
    };
  }
  const rows = (sel, f) => Array.from(document.querySelectorAll(sel)).map(f);
  return {
    ready: d.ready, renders: d.renders, errors: d.errors.slice(), authError: d.authError,
    lastRenderedRound: d.lastRenderedRound, lastEvaluatedRound: d.lastEvaluatedRound,
    evaluatedRounds: d.evaluatedRounds.slice(), charts: charts,
    dataRound: document.getElementById('round').dataset.round,
    roundText: document.getElementById('round').textContent,
    state: document.getElementById('state').dataset.state,
    sites: rows('#sites-table tbody tr', (tr) => ({name: tr.dataset.site, status: tr.dataset.status,
        cells: Array.from(tr.cells).map((c) => c.textContent)})),
    models: rows('#models-table tbody tr', (tr) => ({version: Number(tr.dataset.version),
        sha: tr.querySelector('td.sha').textContent})),
    confusion: rows('#confusion-table tbody tr', (tr) =>
        Array.from(tr.querySelectorAll('td[data-j]')).map((td) => Number(td.textContent))),
    confusionShaded: rows('#confusion-table td[data-j]', (td) => td.style.backgroundColor !== ''),
    dpHidden: document.getElementById('dp-section').hidden,
    xaiHidden: document.getElementById('explanations-section').hidden,
    notice: document.getElementById('notice').hidden ? '' : document.getElementById('notice').textContent,
    marker: window.__dermfedNoReload || null,
  };
})()
"""

# Pixels of each visible chart: how many are painted, and how many have its first dataset's colour.
PIXELS_JS = r"""
(() => {
  const hex = (c) => {
    const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(String(c));
    return m ? [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)] : null;
  };
  const out = {};
  for (const [name, c] of Object.entries(window.dermfedDashboard.charts)) {
    const cv = c.canvas;
    if (cv.offsetParent === null || !cv.width || !cv.height) { out[name] = null; continue; }
    const px = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data;
    const ds = c.data.datasets[0];
    let colour = ds ? (ds.borderColor || ds.backgroundColor) : null;
    if (Array.isArray(colour)) colour = colour[0];  // per-bar colours: the first bar's
    const rgb = colour ? hex(colour) : null;
    let painted = 0, coloured = 0;
    for (let i = 0; i < px.length; i += 4) {
      if (px[i + 3] > 0) painted++;
      if (rgb && px[i + 3] > 200 && Math.abs(px[i] - rgb[0]) < 30 &&
          Math.abs(px[i + 1] - rgb[1]) < 30 && Math.abs(px[i + 2] - rgb[2]) < 30) coloured++;
    }
    out[name] = {width: cv.width, height: cv.height, painted: painted, coloured: coloured};
  }
  return out;
})()
"""


def page_state(page):
    return page.evaluate(PAGE_STATE_JS)


def settled_snapshot(page, api, at_least, timeout):
    """Waits until the page's charts show exactly the API's evaluated rounds (read before and
    after the page, so that no round completed in between), at least `at_least` of them, and
    the page shows the coordinator's state (the federation is paused: nothing moves)."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        before = api.evaluated()
        state = page_state(page)
        status = api.get("status")
        sites = api.get("sites")["sites"]
        models = api.get("models")["models"]
        after_rounds = api.get("rounds")["rounds"]
        after = [r for r in after_rounds if r.get("metrics")]
        want = [r["round"] for r in after]
        last = (state["evaluatedRounds"], want, state["state"], status.get("state"))
        if ([r["round"] for r in before] == want == state["evaluatedRounds"] and len(want) >= at_least
                and len(state["models"]) == len(models) and state["state"] == status.get("state")):
            return state, after, status, sites, models
        time.sleep(0.3)
    fail("the page did not catch up with the API in %d s (page rounds %s, API %s; page state %r, "
         "API %r)" % ((timeout,) + (last if last else (None,) * 4)))


def check_page_against_api(page, state, evaluated, status, sites, models):
    charts = state["charts"]
    for name in ("global", "loss", "sites", "perClass"):
        check(name in charts, "chart %s is missing (charts: %s)" % (name, sorted(charts)))
    rounds = [r["round"] for r in evaluated]
    metrics = [r["metrics"] for r in evaluated]

    # Global metrics per round.
    g = charts["global"]
    check(g["labels"] == rounds, "global chart x axis %s, API rounds %s" % (g["labels"], rounds))
    by_label = {d["label"]: d["data"] for d in g["datasets"]}
    for label, key in (("Balanced accuracy", "balanced_accuracy"), ("Macro AUC", "macro_auc"),
                       ("Accuracy", "accuracy")):
        check(label in by_label, "global chart has no '%s' dataset: %s" % (label, list(by_label)))
        same_list(by_label[label], [m.get(key) for m in metrics], "global " + key)
    loss = charts["loss"]
    check(loss["labels"] == rounds, "loss chart x axis %s, API %s" % (loss["labels"], rounds))
    same_list(loss["datasets"][0]["data"], [m.get("loss") for m in metrics], "loss")

    # Per-site balanced accuracy: one dataset per site, one point per evaluated round.
    s = charts["sites"]
    check(s["labels"] == rounds, "site chart x axis %s, API %s" % (s["labels"], rounds))
    names = {x["name"] for x in sites}
    for m in metrics:
        names |= set((m.get("sites") or {}).keys())
    got = {d["label"]: d["data"] for d in s["datasets"]}
    check(set(got) == names, "site chart datasets %s, API sites %s" % (sorted(got), sorted(names)))
    for n in names:
        want = [((m.get("sites") or {}).get(n) or {}).get("balanced_accuracy") for m in metrics]
        same_list(got[n], want, "site %s balanced accuracy" % n)
    reporting = [n for n in names if any((m.get("sites") or {}).get(n) for m in metrics)]
    check(len(reporting) >= 2, "fewer than 2 sites have per-site metrics: %s" % reporting)

    # Latest evaluated round: per-class bars and the confusion matrix.
    latest = metrics[-1]
    pc = charts["perClass"]
    per_class = latest.get("per_class") or []
    check(per_class, "the API's latest metrics have no per_class")
    check(pc["labels"] == [c["class"] for c in per_class],
          "per-class chart classes %s, API %s" % (pc["labels"], [c["class"] for c in per_class]))
    same_list(pc["datasets"][0]["data"], [c["sensitivity"] for c in per_class], "sensitivity")
    same_list(pc["datasets"][1]["data"], [c["specificity"] for c in per_class], "specificity")
    check(state["confusion"] == latest["confusion_matrix"],
          "confusion matrix on the page %s, API %s" % (state["confusion"], latest["confusion_matrix"]))
    check(state["confusionShaded"] and all(state["confusionShaded"]), "confusion cells are not shaded")

    # Round element.
    check(state["dataRound"] == str(state["lastRenderedRound"]),
          "data-round %r, lastRenderedRound %r" % (state["dataRound"], state["lastRenderedRound"]))
    check(int(state["dataRound"]) >= rounds[-1], "data-round %s is behind the last evaluated round %d" %
          (state["dataRound"], rounds[-1]))
    check(int(state["dataRound"]) <= int(status["round"]) + 1,
          "data-round %s is ahead of the coordinator (round %s)" % (state["dataRound"], status["round"]))

    # Sites table: every site, with the API's status string.
    rows = {r["name"]: r for r in state["sites"]}
    check(set(rows) == {x["name"] for x in sites},
          "sites table %s, API %s" % (sorted(rows), sorted(x["name"] for x in sites)))
    for x in sites:
        check(rows[x["name"]]["cells"][-1].endswith("ago") or rows[x["name"]]["cells"][-1] == "never",
              "site %s: last seen %r" % (x["name"], rows[x["name"]]["cells"][-1]))

    # Models table: every version with the API's checksum.
    page_models = {m["version"]: m["sha"] for m in state["models"]}
    api_models = {m["version"]: m["sha256"] for m in models}
    check(page_models == api_models, "models table %s, API %s" % (page_models, api_models))
    check(all(len(v) == 64 for v in api_models.values()), "API sha256s are not 64 hex: %s" % api_models)
    for r in evaluated:
        check(api_models.get(r["model_version"]) == r["model_sha256"],
              "round %d: /models says %s, /rounds %s" % (r["round"], api_models.get(r["model_version"]),
                                                          r["model_sha256"]))

    # DP panel: shown with its ε per round exactly when the coordinator runs DP.
    if status.get("dp"):
        check(not state["dpHidden"], "DP is on (%s) but the DP panel is hidden" % status["dp"])
        dp = charts.get("dp")
        check(dp is not None, "DP is on but there is no DP chart")
        with_eps = [r for r in evaluated if "dp_epsilon" in r["metrics"]]
        check(dp["labels"] == [r["round"] for r in with_eps], "DP chart rounds %s" % dp["labels"])
        same_list(dp["datasets"][0]["data"], [r["metrics"]["dp_epsilon"] for r in with_eps], "dp_epsilon")
        check(with_eps and with_eps[-1]["metrics"]["dp_epsilon"] is not None, "no ε in the API's metrics")
    else:
        check(state["dpHidden"], "DP is off but the DP panel is shown")

    # Explanations: shown exactly when a round carries them, bars = the latest overall importance.
    with_x = [m for m in metrics if (m.get("explanations") or {}).get("features")]
    if with_x:
        x = with_x[-1]["explanations"]
        check(not state["xaiHidden"], "the API has explanations but the panel is hidden")
        imp = charts.get("importance")
        check(imp is not None, "no importance chart")
        want = dict(zip(x["features"], x["overall"]))
        got_x = dict(zip(imp["labels"], imp["datasets"][0]["data"]))
        check(set(got_x) == set(want), "importance features %s, API %s" % (sorted(got_x), sorted(want)))
        for f in want:
            check(same(got_x[f], want[f]), "importance of %s: page %r, API %r" % (f, got_x[f], want[f]))
    else:
        check(state["xaiHidden"], "no explanations in the API but the panel is shown")
    return len(with_x) > 0


def check_pixels(page, names):
    px = page.evaluate(PIXELS_JS)
    for name in names:
        p = px.get(name)
        check(p is not None, "chart %s has no visible canvas" % name)
        area = p["width"] * p["height"]
        check(p["painted"] > 0.01 * area, "chart %s is blank: %d of %d pixels painted" % (name, p["painted"], area))
        check(p["coloured"] > 40, "chart %s shows no pixels of its first dataset's colour (%s)" % (name, p))
    return px


def check_clean(page, what):
    errors = [c for c in page.console if c[0] in ("error", "assert")]
    check(not page.exceptions, "%s: uncaught exceptions: %s" % (what, json.dumps(page.exceptions)[:2000]))
    check(not errors, "%s: console errors: %s" % (what, errors))
    check(not page.http_errors, "%s: failed requests: %s" % (what, page.http_errors))
    dash_errors = page.evaluate("window.dermfedDashboard.errors")
    check(not dash_errors, "%s: dashboard errors: %s" % (what, dash_errors))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--token-file", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--spki", required=True, help="base64 SHA-256 of the server certificate's SPKI")
    ap.add_argument("--work", required=True)
    ap.add_argument("--dermfed", required=True, help="the dermfed CLI (pause and resume)")
    ap.add_argument("--grpc", required=True, help="the coordinator's gRPC address")
    ap.add_argument("--admin-cert", required=True)
    ap.add_argument("--admin-key", required=True)
    ap.add_argument("--screenshot", default="")
    ap.add_argument("--min-rounds", type=int, default=2)
    args = ap.parse_args()

    base = args.url.rstrip("/")
    token = open(args.token_file).read().strip()
    api = Api(base, args.ca, args.cert, args.key)
    admin = Admin(args.dermfed, args.grpc, args.ca, args.admin_cert, args.admin_key)

    browser = cdp.Browser(extra_args=["--ignore-certificate-errors-spki-list=" + args.spki],
                          log_path=os.path.join(args.work, "logs", "chromium.log"),
                          user_data_dir=os.path.join(args.work, "chromium-profile"))
    try:
        log("browser: %s" % browser.version.get("product"))
        page = browser.new_page()

        # Sign in with the token: 303 to /, then the page renders.
        final = page.navigate(base + "/login?token=" + token)
        check(final == base + "/", "login ended at %s, not %s/" % (final, base))
        check(not any(token in n for n in page.navigations), "the token stayed in the URL: %s" % page.navigations)
        page.wait_for("window.dermfedDashboard && window.dermfedDashboard.ready && "
                      "window.dermfedDashboard.renders > 0", timeout=30)
        cookies = page.send("Network.getCookies", {"urls": [base + "/"]})["cookies"]
        tok = [c for c in cookies if c["value"] == token]
        check(tok and tok[0]["httpOnly"] and tok[0]["secure"],
              "the login cookie is not HttpOnly+Secure: %s" % cookies)
        check(page.evaluate("document.cookie").find(token) < 0, "the token is readable from JS")
        log("page rendered (%s)" % page.evaluate("document.getElementById('round').textContent"))

        deadline = time.time() + 120
        while len(api.evaluated()) < args.min_rounds:
            check(time.time() < deadline, "fewer than %d rounds evaluated in 120 s" % args.min_rounds)
            time.sleep(0.5)
        pause(admin, api, "dashboard check: first look")
        state, evaluated, status, sites, models = settled_snapshot(page, api, args.min_rounds, 60)
        check(state["state"] == "paused", "the page shows state %r, not paused" % state["state"])
        has_x = check_page_against_api(page, state, evaluated, status, sites, models)
        drawn = ["global", "loss", "sites", "perClass"] + (["dp"] if status.get("dp") else []) + \
                (["importance"] if has_x else [])
        px = check_pixels(page, drawn)
        check_clean(page, "first load")
        log("page matches the API: %d evaluated rounds, %d sites, %d models, dp %s, explanations %s; "
            "pixels %s" % (len(evaluated), len(sites), len(models), "on" if status.get("dp") else "off",
                           "yes" if has_x else "no",
                           {k: v["coloured"] for k, v in px.items() if v and k in drawn}))
        page.screenshot(os.path.join(args.work, "dashboard-1.png"))

        # Live: another round is evaluated and the page follows without a reload.
        page.evaluate("window.__dermfedNoReload = 'still here'")
        navs = len(page.navigations)
        n0 = len(state["evaluatedRounds"])
        round0 = int(state["dataRound"])
        check(admin.run("resume", "dashboard check: live update").startswith("resumed"),
              "resume did not resume")
        deadline = time.time() + 120
        while len(api.evaluated()) <= n0:
            check(time.time() < deadline, "no new round was evaluated in 120 s")
            time.sleep(0.2)
        page.wait_for("Number(document.getElementById('round').dataset.round) > %d" % round0, timeout=60)
        pause(admin, api, "dashboard check: second look")
        state, evaluated, status, sites, models = settled_snapshot(page, api, n0 + 1, 60)
        check(state["marker"] == "still here" and len(page.navigations) == navs,
              "the page reloaded (navigations %s)" % page.navigations)
        check(len(state["evaluatedRounds"]) > n0, "the charts did not grow")
        for name in ("global", "loss", "sites"):
            pts = len(state["charts"][name]["labels"])
            check(pts > n0, "chart %s still has %d points (had %d)" % (name, pts, n0))
        check(int(state["dataRound"]) > round0, "the round element stayed at %d" % round0)
        check_page_against_api(page, state, evaluated, status, sites, models)
        check_pixels(page, drawn)
        check_clean(page, "live update")
        log("live update: charts %d -> %d points, round element %d -> %s, no reload" %
            (n0, len(state["evaluatedRounds"]), round0, state["dataRound"]))
        shot = page.screenshot(os.path.join(args.work, "dashboard-2.png"))
        if args.screenshot:
            shutil.copyfile(shot, args.screenshot)
        log("screenshot %s" % shot)

        # A browser without the token: the 401 message, no data.
        ctx = browser.new_context()
        anon = browser.new_page(browser_context=ctx)
        anon.navigate(base + "/")
        log("opened the page in a fresh browser context")
        anon.wait_for("window.dermfedDashboard && window.dermfedDashboard.ready", timeout=30)
        st = page_state(anon)
        check(st["authError"] == 401, "without the token: authError %r" % st["authError"])
        check("researcher or admin certificate" in st["notice"] and "token" in st["notice"],
              "without the token the notice says %r" % st["notice"])
        check(not st["sites"] and not st["models"], "data shown without the token")
        check(not anon.exceptions, "exceptions on the 401 page: %s" % anon.exceptions)
        anon.screenshot(os.path.join(args.work, "dashboard-401.png"))
        log("without the token: %r" % st["notice"][:80])
    finally:
        browser.close()
    log("browser checks passed")


if __name__ == "__main__":
    main()
