// dermfed coordinator dashboard: live view of a federation through the coordinator's JSON API
// (/api/v1/status, rounds, sites, models, events). No framework; Chart.js 3 (global `Chart`)
// draws the plots. The page long-polls /api/v1/events and re-reads status/rounds/sites/models
// when something happens, plus a slow periodic refresh (last-seen times, missed events).
//
// Served under CSP "default-src 'self'; style-src 'self'": no inline script or style, no eval;
// data-dependent colours and widths are set through the CSSOM (element.style.x = ...).
//
// window.dermfedDashboard is read-only state for tests:
//   ready              true once the first complete render is done (or an auth error is shown)
//   lastRenderedRound  the round shown in #round (equals its data-round)
//   lastEvaluatedRound the newest round plotted in the charts (null: none yet)
//   evaluatedRounds    the round numbers on the charts' x axis
//   charts             {global, loss, sites, perClass, dp, importance}: Chart instances
//   errors             messages of failed requests and script errors (newest last, at most 50)
//   authError          null, or the HTTP status (401/403) that stopped the page
//   renders            how many times the page was rendered
(function () {
  'use strict';

  const API = 'api/v1/';
  const EVENT_WAIT_MS = 20000;
  const REFRESH_MS = 5000;
  const AUTH_RETRY_MS = 15000;
  const SITE_COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2',
                       '#ca8a04', '#db2777', '#4f46e5', '#65a30d', '#0d9488', '#b45309'];
  const METRIC_COLORS = {balanced_accuracy: '#2563eb', macro_auc: '#16a34a', accuracy: '#9333ea',
                         loss: '#dc2626', sensitivity: '#0891b2', specificity: '#f59e0b',
                         epsilon: '#7c3aed', importance: '#0d9488'};
  const STATUS_LABELS = {selected: 'training', uploaded: 'uploaded', late: 'late',
                         evaluating: 'evaluating', evaluated: 'evaluated',
                         disconnected: 'disconnected', dropped: 'dropped', idle: 'connected'};
  const STATE_LABELS = {waiting_for_sites: 'waiting for sites', training: 'training',
                        aggregating: 'aggregating', evaluating: 'evaluating', paused: 'paused',
                        stopped: 'stopped', done: 'done'};
  const NEGATIVE_COLOR = '#f97316';
  const BAD_EVENTS = new Set(['update_rejected', 'stragglers_dropped', 'stopped']);

  const dash = {
    ready: false,
    lastRenderedRound: null,
    lastEvaluatedRound: null,
    evaluatedRounds: [],
    charts: {},
    errors: [],
    authError: null,
    renders: 0,
  };
  window.dermfedDashboard = dash;

  const st = {
    status: null,
    rounds: [],
    sites: [],
    models: [],
    events: [],
    clockOffsetMs: 0,     // server clock - browser clock
    roundsKey: null,      // what status said when rounds/models were last fetched
    refreshing: null,
    refreshAgain: false,
    eventsRunning: false,
    eventsUnsupported: false,
    eventsClosed: false,
    lastSeq: 0,
    lastOk: 0,
    failures: 0,
  };

  // ---------- small helpers ----------
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    if (attrs) {
      for (const k of Object.keys(attrs)) {
        if (k === 'className') e.className = attrs[k];
        else e.setAttribute(k, attrs[k]);
      }
    }
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function isNum(v) { return typeof v === 'number' && isFinite(v); }
  function num(v) { return isNum(v) ? v : null; }  // NaN arrives as null; keep it null

  function fmt(v, digits) {
    if (!isNum(v)) return '—';
    return v.toFixed(digits === undefined ? 3 : digits);
  }

  function fmtEps(v) {
    if (!isNum(v)) return '—';
    return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  }

  function fmtSci(v) {
    if (!isNum(v)) return '—';
    return v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e4) ? v.toExponential(0) : String(v);
  }

  function serverNow() { return Date.now() + st.clockOffsetMs; }

  function fmtAgo(unixMs) {
    if (!isNum(unixMs) || unixMs <= 0) return 'never';
    const s = Math.max(0, Math.round((serverNow() - unixMs) / 1000));
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.floor(s / 60) + ' min ago';
    if (s < 86400) return Math.floor(s / 3600) + ' h ago';
    return new Date(unixMs).toLocaleString();
  }

  function fmtWhen(unixS) {
    if (!isNum(unixS) || unixS <= 0) return '—';
    const d = new Date(unixS * 1000);
    return d.toLocaleDateString(undefined, {month: 'short', day: 'numeric'}) + ' ' +
           d.toLocaleTimeString(undefined, {hour12: false});
  }

  function fmtClock(unixMs) {
    if (!isNum(unixMs)) return '';
    return new Date(unixMs).toLocaleTimeString(undefined, {hour12: false});
  }

  function lower(s) { return typeof s === 'string' ? s.toLowerCase() : ''; }

  function recordError(msg) {
    const text = String(msg);
    const last = dash.errors[dash.errors.length - 1];
    if (last === text) return;
    dash.errors.push(text);
    if (dash.errors.length > 50) dash.errors.splice(0, dash.errors.length - 50);
    if (window.console) console.warn('dermfed dashboard:', text);
  }

  function setText(id, text) {
    const e = $(id);
    if (e && e.textContent !== text) e.textContent = text;
  }

  function setProgress(id, fraction) {
    const bar = $(id);
    const f = isNum(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
    bar.firstElementChild.style.width = (f * 100).toFixed(1) + '%';
    bar.setAttribute('aria-valuenow', String(Math.round(f * 100)));
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  // Heat colour on white, blue ramp: CSSOM only (CSP forbids inline style attributes).
  function shade(cell, fraction) {
    const f = isNum(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
    cell.style.backgroundColor = 'rgba(37, 99, 235, ' + (0.06 + 0.84 * f).toFixed(3) + ')';
    cell.style.color = f > 0.5 ? '#ffffff' : '';
  }

  // Diverging: positive values blue, negative orange, strength |v| / maxAbs.
  function shadeSigned(cell, v, maxAbs) {
    if (!isNum(v) || !maxAbs) { cell.style.backgroundColor = ''; cell.style.color = ''; return; }
    const f = Math.min(1, Math.abs(v) / maxAbs);
    const rgb = v >= 0 ? '37, 99, 235' : '234, 88, 12';
    cell.style.backgroundColor = 'rgba(' + rgb + ', ' + (0.04 + 0.8 * f).toFixed(3) + ')';
    cell.style.color = f > 0.55 ? '#ffffff' : '';
  }

  // ---------- fetching ----------
  class HttpError extends Error {
    constructor(path, status, detail) {
      super(path + ': HTTP ' + status + (detail ? ' (' + detail + ')' : ''));
      this.status = status;
    }
  }

  async function getJSON(path) {
    const res = await fetch(API + path, {
      credentials: 'same-origin',
      cache: 'no-store',
      headers: {Accept: 'application/json'},
    });
    if (!res.ok) {
      let detail = '';
      try {
        const body = await res.text();
        try { detail = JSON.parse(body).error || ''; } catch (e) { detail = body.slice(0, 200); }
      } catch (e) { /* ignore */ }
      throw new HttpError(path.split('?')[0], res.status, detail);
    }
    return res.json();
  }

  function isAuth(e) { return e instanceof HttpError && (e.status === 401 || e.status === 403); }

  function showAuthError(status, detail) {
    dash.authError = status;
    document.body.classList.add('auth-error');
    const n = $('notice');
    clear(n);
    n.className = 'notice';
    if (status === 401) {
      n.appendChild(el('strong', null, 'Not signed in (HTTP 401).'));
      n.appendChild(document.createTextNode(
          'This dashboard needs a researcher or admin certificate, or a token: ' +
          'open /login?token=… with the token your administrator gave you, or present your ' +
          'researcher/admin client certificate.'));
    } else {
      n.appendChild(el('strong', null, 'Access denied (HTTP 403).'));
      n.appendChild(document.createTextNode(
          'The certificate you presented is not allowed to read the federation: this ' +
          'dashboard needs a researcher or admin certificate, or a token. Site certificates ' +
          'cannot open it.'));
    }
    if (detail) n.appendChild(el('div', {className: 'subtle'}, detail));
    n.hidden = false;
    setLive('lost', status === 401 ? 'not signed in' : 'forbidden');
  }

  function clearNotice() {
    if (dash.authError !== null) {
      dash.authError = null;
      document.body.classList.remove('auth-error');
    }
    $('notice').hidden = true;
  }

  function showConnectionLost(msg) {
    const n = $('notice');
    clear(n);
    n.className = 'notice notice-info';
    n.appendChild(el('strong', null, 'Lost contact with the coordinator.'));
    n.appendChild(document.createTextNode(msg + ' — retrying; the figures below are from ' +
        (st.lastOk ? fmtClock(st.lastOk) : 'nowhere yet') + '.'));
    n.hidden = false;
  }

  function setLive(kind, text) {
    const l = $('live');
    l.className = 'live live-' + kind;
    l.textContent = text;
  }

  function roundsKeyOf(s) {
    const lm = s.latest_metrics;
    return [s.completed_round, s.model_version, s.model_sha256, s.rounds_total,
            lm && isNum(lm.round) ? lm.round : -1, s.last_event_seq].join('|');
  }

  // One refresh at a time; a request during one runs another right after it.
  function requestRefresh(full) {
    if (full) st.roundsKey = null;
    if (st.refreshing) { st.refreshAgain = true; return st.refreshing; }
    st.refreshing = (async () => {
      try {
        do {
          st.refreshAgain = false;
          await refreshOnce();
        } while (st.refreshAgain);
      } finally {
        st.refreshing = null;
      }
    })();
    return st.refreshing;
  }

  async function refreshOnce() {
    let status;
    try {
      status = await getJSON('status');
      const needRounds = st.roundsKey !== roundsKeyOf(status);
      const [sites, rounds, models] = await Promise.all([
        getJSON('sites'),
        needRounds ? getJSON('rounds') : Promise.resolve(null),
        needRounds ? getJSON('models') : Promise.resolve(null),
      ]);
      st.status = status;
      if (isNum(status.server_unix_ms)) st.clockOffsetMs = status.server_unix_ms - Date.now();
      st.sites = Array.isArray(sites && sites.sites) ? sites.sites : [];
      if (needRounds) {
        st.rounds = Array.isArray(rounds && rounds.rounds) ? rounds.rounds.slice() : [];
        st.rounds.sort((a, b) => a.round - b.round);
        st.models = Array.isArray(models && models.models) ? models.models.slice() : [];
        st.models.sort((a, b) => b.version - a.version);
        st.roundsKey = roundsKeyOf(status);
      }
      st.lastOk = Date.now();
      st.failures = 0;
      clearNotice();
      render();
      if (!st.eventsRunning && !st.eventsUnsupported && !st.eventsClosed) {
        startEvents(isNum(status.last_event_seq) ? status.last_event_seq : 0);
      }
    } catch (e) {
      if (isAuth(e)) {
        showAuthError(e.status, e.message);
        dash.ready = true;
        return;
      }
      st.failures += 1;
      recordError(e.message || String(e));
      if (st.failures >= 2) {
        setLive('lost', 'disconnected');
        showConnectionLost(e.message || String(e));
      }
      if (!dash.ready && st.status) dash.ready = true;
    }
  }

  // ---------- events (long poll) ----------
  async function startEvents(lastSeq) {
    st.eventsRunning = true;
    st.lastSeq = lastSeq;
    try {
      // Backfill the list with what the coordinator still holds, without waiting.
      const back = await getJSON('events?after=' + Math.max(0, lastSeq - 40) + '&wait_ms=0');
      addEvents(back.events);
      if (isNum(back.last_seq)) st.lastSeq = Math.max(st.lastSeq, back.last_seq);
      renderEvents();
      setLive('on', 'live');
      let errors = 0;
      while (!st.eventsClosed && dash.authError === null) {
        let r;
        try {
          r = await getJSON('events?after=' + st.lastSeq + '&wait_ms=' + EVENT_WAIT_MS);
          errors = 0;
        } catch (e) {
          if (isAuth(e)) { showAuthError(e.status, e.message); break; }
          errors += 1;
          if (errors >= 2) setLive('lost', 'reconnecting…');
          recordError(e.message || String(e));
          await sleep(Math.min(10000, 1000 * errors));
          continue;
        }
        setLive('on', 'live');
        const evs = Array.isArray(r.events) ? r.events : [];
        if (evs.length) {
          addEvents(evs);
          renderEvents();
          requestRefresh(false);
        }
        // Trust the server's number even when it is lower: a restarted coordinator numbers
        // its events from 1 again.
        if (isNum(r.last_seq)) st.lastSeq = r.last_seq;
        if (r.closed) {
          st.eventsClosed = true;
          setLive('off', 'federation ended');
          requestRefresh(true);
        }
      }
    } catch (e) {
      if (isAuth(e)) showAuthError(e.status, e.message);
      else if (e instanceof HttpError && e.status === 404) {
        st.eventsUnsupported = true;  // an older coordinator: periodic refresh only
        setLive('on', 'polling');
      } else {
        recordError(e.message || String(e));
      }
    } finally {
      st.eventsRunning = false;
    }
  }

  function addEvents(evs) {
    if (!Array.isArray(evs)) return;
    const seen = new Set(st.events.map((e) => e.seq));
    for (const e of evs) {
      if (e && !seen.has(e.seq)) { st.events.push(e); seen.add(e.seq); }
    }
    st.events.sort((a, b) => a.seq - b.seq);
    if (st.events.length > 200) st.events.splice(0, st.events.length - 200);
  }

  function sleep(ms) { return new Promise((resolve) => setTimeout(resolve, ms)); }

  // ---------- rendering ----------
  function render() {
    const s = st.status;
    if (!s) return;
    try {
      renderOverview(s);
      renderSites();
      renderCharts();
      renderLatestEvaluated();
      renderModels();
      renderDp(s);
      renderExplanations();
      renderEvents();
      setText('updated', 'updated ' + fmtClock(Date.now()));
      document.body.classList.remove('loading');
      dash.renders += 1;
      dash.ready = true;
    } catch (e) {
      recordError('render: ' + (e && e.stack ? e.stack : e));
    }
  }

  function classNames() {
    const s = st.status;
    if (s && Array.isArray(s.class_names) && s.class_names.length) return s.class_names;
    const m = latestEvaluated();
    if (m && Array.isArray(m.per_class)) return m.per_class.map((c) => c['class']);
    return [];
  }

  function evaluatedRounds() {
    return st.rounds.filter((r) => r && r.metrics && typeof r.metrics === 'object');
  }

  function latestEvaluated() {
    const ev = evaluatedRounds();
    if (ev.length) return ev[ev.length - 1].metrics;
    return st.status && st.status.latest_metrics ? st.status.latest_metrics : null;
  }

  function renderOverview(s) {
    setText('federation-name', s.federation || '');
    document.title = 'dermfed · ' + (s.federation || 'federation') + ' · round ' + s.round;
    setText('caller', !s.caller ? '' : s.caller === 'token' ? 'signed in with the access token'
                                     : 'signed in as ' + s.caller);

    const roundEl = $('round');
    const total = isNum(s.rounds_total) ? s.rounds_total : null;
    let title;
    if (s.state === 'done') title = 'Federation done: ' + s.completed_round + ' of ' + total + ' rounds';
    else if (s.state === 'stopped') title = 'Federation stopped after round ' + s.completed_round;
    else if (!isNum(s.round) || (s.round === 0 && !s.completed_round)) {
      title = s.state === 'waiting_for_sites' ? 'Waiting for sites — no round yet' : 'No round yet';
    } else title = 'Round ' + s.round + (total ? ' of ' + total : '');
    roundEl.textContent = title;
    roundEl.dataset.round = String(isNum(s.round) ? s.round : 0);
    dash.lastRenderedRound = isNum(s.round) ? s.round : 0;

    const stEl = $('state');
    stEl.textContent = STATE_LABELS[s.state] || s.state || 'unknown';
    stEl.dataset.state = s.state || '';
    $('pause-requested').hidden = !s.pause_requested || s.state === 'paused';

    const completed = isNum(s.completed_round) ? s.completed_round : 0;
    setProgress('rounds-progress', total ? completed / total : 0);
    setText('rounds-progress-text', total ? completed + ' of ' + total : String(completed));

    const selected = isNum(s.sites_selected) ? s.sites_selected : 0;
    const reported = isNum(s.sites_reported) ? s.sites_reported : 0;
    const inRound = s.state === 'training' || s.state === 'aggregating' || s.state === 'evaluating';
    setText('sites-progress-title', inRound ? 'Round ' + s.round + ': selected sites reported'
                                            : 'Selected sites reported (no round running)');
    setProgress('sites-progress', selected ? reported / selected : 0);
    setText('sites-progress-text', selected ? reported + ' of ' + selected : '—');

    setText('fact-version', isNum(s.model_version) ? 'version ' + s.model_version : '—');
    const sha = $('fact-sha');
    sha.textContent = s.model_sha256 ? s.model_sha256.slice(0, 16) + '…' : '—';
    sha.title = s.model_sha256 || '';
    setText('fact-strategy', s.strategy || '—');
    setText('fact-backbone', s.backbone || '—');
    setText('fact-sites', isNum(s.sites_known) ? String(s.sites_known) : '—');
    setText('fact-secagg', s.secure_aggregation ? 'on' : 'off');
    setText('fact-dp', s.dp ? (s.dp.mode || 'on') : 'off');
    updateDeadline();
  }

  function updateDeadline() {
    const s = st.status;
    if (!s) return;
    let text = '—';
    if (isNum(s.deadline_unix_ms) && s.deadline_unix_ms > 0 &&
        (s.state === 'training' || s.state === 'evaluating' || s.state === 'aggregating')) {
      const left = Math.round((s.deadline_unix_ms - serverNow()) / 1000);
      text = left >= 0 ? 'in ' + left + ' s' : 'passed ' + (-left) + ' s ago';
    }
    setText('fact-deadline', text);
  }

  function renderSites() {
    const body = $('sites-table').tBodies[0];
    clear(body);
    const latest = latestEvaluated();
    const perSite = latest && latest.sites && typeof latest.sites === 'object' ? latest.sites : {};
    const sites = st.sites.slice().sort((a, b) => String(a.name).localeCompare(String(b.name)));
    for (const site of sites) {
      const tr = el('tr', {'data-site': site.name, 'data-status': site.status || ''});
      tr.appendChild(el('td', null, site.name));
      const tdStatus = el('td');
      const badge = el('span', {className: 'status status-' + lower(site.status)},
                       STATUS_LABELS[site.status] || site.status || 'unknown');
      badge.title = 'coordinator status: ' + (site.status || 'unknown');
      tdStatus.appendChild(badge);
      tr.appendChild(tdStatus);
      tr.appendChild(el('td', {className: 'num'}, isNum(site.train_rows) ? site.train_rows : '—'));
      tr.appendChild(el('td', {className: 'num'}, isNum(site.rounds_contributed) ? site.rounds_contributed : '—'));
      tr.appendChild(el('td', {className: 'num'}, isNum(site.last_round) && site.last_round > 0 ? site.last_round : '—'));
      const m = perSite[site.name];
      tr.appendChild(el('td', {className: 'num'}, m ? fmt(m.balanced_accuracy) : '—'));
      const seen = el('td', {className: 'last-seen', 'data-ms': String(site.last_seen_unix_ms || 0)},
                      fmtAgo(site.last_seen_unix_ms));
      if (isNum(site.last_seen_unix_ms) && site.last_seen_unix_ms > 0) {
        seen.title = new Date(site.last_seen_unix_ms).toLocaleString();
      }
      tr.appendChild(seen);
      body.appendChild(tr);
    }
    $('sites-empty').hidden = sites.length > 0;
    updateAges();
  }

  function updateAges() {
    for (const td of document.querySelectorAll('#sites-table td.last-seen')) {
      const ms = Number(td.dataset.ms);
      const text = fmtAgo(ms);
      if (td.textContent !== text) td.textContent = text;
      td.classList.toggle('stale', ms > 0 && serverNow() - ms > 120000);
    }
  }

  // ---------- charts ----------
  function chartOk() { return typeof window.Chart === 'function'; }

  function lineDataset(label, data, color, extra) {
    return Object.assign({
      label: label, data: data, borderColor: color, backgroundColor: color,
      borderWidth: 2, pointRadius: 3, pointHoverRadius: 5, tension: 0.15, spanGaps: false,
    }, extra || {});
  }

  function baseOptions(yOpts, extra) {
    return Object.assign({
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      normalized: true,
      interaction: {mode: 'index', intersect: false},
      plugins: {
        legend: {position: 'bottom', labels: {boxWidth: 12, boxHeight: 12}},
        tooltip: {callbacks: {label: (ctx) => ctx.dataset.label + ': ' +
            (ctx.parsed.y === null || ctx.parsed.y === undefined ? 'n/a' : fmt(ctx.parsed.y))}},
      },
      scales: {
        x: {title: {display: true, text: 'round'}, grid: {display: false}},
        y: Object.assign({beginAtZero: false, grid: {color: '#eef2f7'}}, yOpts || {}),
      },
    }, extra || {});
  }

  // Creates the chart on first use, then swaps its data in place (no re-creation, no flicker).
  function upsertChart(name, canvasId, type, labels, datasets, options, emptyWhen) {
    const canvas = $(canvasId);
    const box = canvas.parentElement;
    const empty = box.querySelector('.chart-empty');
    if (empty) empty.hidden = !emptyWhen;
    if (!chartOk()) return null;
    let chart = dash.charts[name];
    if (!chart) {
      chart = new window.Chart(canvas, {type: type, data: {labels: labels, datasets: datasets},
                                        options: options});
      dash.charts[name] = chart;
      return chart;
    }
    chart.data.labels = labels;
    // Keep dataset objects whose label is unchanged (Chart.js keeps their metadata).
    const byLabel = new Map(chart.data.datasets.map((d) => [d.label, d]));
    chart.data.datasets = datasets.map((d) => {
      const old = byLabel.get(d.label);
      if (!old) return d;
      Object.assign(old, d);
      return old;
    });
    if (options && options.scales) {
      for (const axis of Object.keys(options.scales)) {
        if (chart.options.scales[axis]) Object.assign(chart.options.scales[axis], options.scales[axis]);
      }
    }
    chart.update('none');
    return chart;
  }

  function renderCharts() {
    const ev = evaluatedRounds();
    const labels = ev.map((r) => r.round);
    dash.evaluatedRounds = labels.slice();
    dash.lastEvaluatedRound = labels.length ? labels[labels.length - 1] : null;
    const none = labels.length === 0;
    const metric = (key) => ev.map((r) => num(r.metrics[key]));

    upsertChart('global', 'chart-global', 'line', labels, [
      lineDataset('Balanced accuracy', metric('balanced_accuracy'), METRIC_COLORS.balanced_accuracy),
      lineDataset('Macro AUC', metric('macro_auc'), METRIC_COLORS.macro_auc),
      lineDataset('Accuracy', metric('accuracy'), METRIC_COLORS.accuracy, {borderDash: [5, 4]}),
    ], baseOptions({min: 0, max: 1}), none);

    upsertChart('loss', 'chart-loss', 'line', labels, [
      lineDataset('Loss', metric('loss'), METRIC_COLORS.loss),
    ], baseOptions({beginAtZero: true}), none);

    // One dataset per site: every site seen in any round's metrics or in /sites.
    const names = new Set(st.sites.map((s) => s.name));
    for (const r of ev) {
      if (r.metrics.sites && typeof r.metrics.sites === 'object') {
        for (const n of Object.keys(r.metrics.sites)) names.add(n);
      }
    }
    const siteNames = Array.from(names).sort();
    const siteSets = siteNames.map((n, i) => lineDataset(n, ev.map((r) => {
      const s = r.metrics.sites && r.metrics.sites[n];
      return s ? num(s.balanced_accuracy) : null;
    }), SITE_COLORS[i % SITE_COLORS.length]));
    upsertChart('sites', 'chart-sites', 'line', labels, siteSets, baseOptions({min: 0, max: 1}), none);
  }

  function renderLatestEvaluated() {
    const m = latestEvaluated();
    const cls = classNames();
    setText('kpi-bacc', m ? fmt(m.balanced_accuracy) : '—');
    setText('kpi-auc', m ? fmt(m.macro_auc) : '—');
    setText('kpi-acc', m ? fmt(m.accuracy) : '—');
    setText('kpi-loss', m ? fmt(m.loss) : '—');
    setText('kpi-note', m ? 'global model of round ' + m.round + ' (version ' + m.model_version +
        '), ' + (isNum(m.num_examples) ? m.num_examples + ' held-out examples' : '') +
        (isNum(m.sites_reporting) ? ' from ' + m.sites_reporting + ' sites' : '')
        : 'no evaluated round yet');
    const roundNote = m ? '(round ' + m.round + ')' : '';
    setText('class-round', roundNote);
    setText('cm-round', roundNote);
    setText('pc-table-round', roundNote);

    // Per-class sensitivity / specificity.
    const pc = m && Array.isArray(m.per_class) ? m.per_class : [];
    upsertChart('perClass', 'chart-per-class', 'bar', pc.map((c) => c['class']), [
      {label: 'Sensitivity', data: pc.map((c) => num(c.sensitivity)),
       backgroundColor: METRIC_COLORS.sensitivity, borderRadius: 3},
      {label: 'Specificity', data: pc.map((c) => num(c.specificity)),
       backgroundColor: METRIC_COLORS.specificity, borderRadius: 3},
    ], baseOptions({min: 0, max: 1}, {
      scales: {x: {title: {display: true, text: 'class'}, grid: {display: false}},
               y: {min: 0, max: 1, grid: {color: '#eef2f7'}}},
    }), pc.length === 0);
    const pcBody = $('per-class-table').tBodies[0];
    clear(pcBody);
    for (const c of pc) {
      const tr = el('tr', {'data-class': c['class']});
      tr.appendChild(el('td', null, c['class']));
      tr.appendChild(el('td', {className: 'num'}, fmt(c.sensitivity)));
      tr.appendChild(el('td', {className: 'num'}, fmt(c.specificity)));
      tr.appendChild(el('td', {className: 'num'}, isNum(c.support) ? c.support : '—'));
      pcBody.appendChild(tr);
    }

    // Confusion matrix, shaded by the share of its row (recall on the diagonal).
    const cm = m && Array.isArray(m.confusion_matrix) ? m.confusion_matrix : null;
    const table = $('confusion-table');
    clear(table.tHead);
    clear(table.tBodies[0]);
    $('cm-empty').hidden = !!(cm && cm.length);
    table.hidden = !(cm && cm.length);
    if (cm && cm.length) {
      const k = cm.length;
      const names = [];
      for (let i = 0; i < k; i++) names.push(cls[i] !== undefined ? cls[i] : 'class ' + i);
      const head = el('tr');
      head.appendChild(el('th', {className: 'corner'}, 'true \\ predicted'));
      for (const n of names) head.appendChild(el('th', null, n));
      head.appendChild(el('th', null, 'total'));
      table.tHead.appendChild(head);
      for (let i = 0; i < k; i++) {
        const row = Array.isArray(cm[i]) ? cm[i] : [];
        const total = row.reduce((a, v) => a + (isNum(v) ? v : 0), 0);
        const tr = el('tr');
        tr.appendChild(el('th', null, names[i]));
        for (let j = 0; j < k; j++) {
          const v = isNum(row[j]) ? row[j] : 0;
          const td = el('td', {className: i === j ? 'diag' : '', 'data-i': String(i), 'data-j': String(j)}, v);
          td.title = names[i] + ' predicted as ' + names[j] + ': ' + v +
                     (total ? ' (' + (100 * v / total).toFixed(1) + '% of the row)' : '');
          shade(td, total ? v / total : 0);
          tr.appendChild(td);
        }
        tr.appendChild(el('td', {className: 'total'}, total));
        table.tBodies[0].appendChild(tr);
      }
    }
  }

  function renderModels() {
    const body = $('models-table').tBodies[0];
    clear(body);
    const current = st.status ? st.status.model_version : null;
    for (const m of st.models) {
      const tr = el('tr', {'data-version': String(m.version)});
      if (m.version === current) tr.className = 'current';
      tr.appendChild(el('td', {className: 'num'}, m.version + (m.version === current ? ' (current)' : '')));
      tr.appendChild(el('td', {className: 'sha'}, m.sha256 || '—'));
      tr.appendChild(el('td', null, fmtWhen(m.finished_unix_s)));
      tr.appendChild(el('td', null, m.available ? 'kept' : 'pruned'));
      body.appendChild(tr);
    }
    $('models-empty').hidden = st.models.length > 0;
  }

  function renderDp(s) {
    const section = $('dp-section');
    if (!s.dp) {
      section.hidden = true;
      return;
    }
    section.hidden = false;
    const dp = s.dp;
    setText('dp-epsilon', fmtEps(dp.epsilon));
    setText('dp-delta', fmtSci(dp.delta));
    setText('dp-mode', dp.mode || 'on');
    const meter = $('dp-meter');
    if (isNum(dp.epsilon_budget) && dp.epsilon_budget > 0) {
      const eps = isNum(dp.epsilon) ? dp.epsilon : 0;
      setProgress('dp-meter', eps / dp.epsilon_budget);
      meter.classList.toggle('over', eps > dp.epsilon_budget);
      setText('dp-budget-text', 'ε ' + fmtEps(eps) + ' of ' + fmtEps(dp.epsilon_budget) + ' (' +
          Math.round(100 * eps / dp.epsilon_budget) + '%)');
      meter.hidden = false;
    } else {
      meter.hidden = true;
      setText('dp-budget-text', 'no budget set (report only)');
    }
    const ev = evaluatedRounds().filter((r) => r.metrics.dp_epsilon !== undefined);
    upsertChart('dp', 'chart-dp', 'line', ev.map((r) => r.round), [
      lineDataset('ε after the round', ev.map((r) => num(r.metrics.dp_epsilon)), METRIC_COLORS.epsilon,
                  {fill: false}),
    ], baseOptions({beginAtZero: true}), ev.length === 0);
  }

  function renderExplanations() {
    const section = $('explanations-section');
    let x = null;
    let round = null;
    const ev = evaluatedRounds();
    for (let i = ev.length - 1; i >= 0; i--) {
      const e = ev[i].metrics.explanations;
      if (e && Array.isArray(e.features) && e.features.length) { x = e; round = ev[i].round; break; }
    }
    if (!x) {
      const lm = st.status && st.status.latest_metrics;
      if (lm && lm.explanations && Array.isArray(lm.explanations.features)) {
        x = lm.explanations;
        round = lm.round;
      }
    }
    if (!x) {
      section.hidden = true;
      return;
    }
    section.hidden = false;
    setText('xai-round', '(round ' + round + (isNum(x.sites) ? ', from ' + x.sites + ' sites' : '') + ')');
    setText('xai-measure', (x.measure ? 'Measure: ' + x.measure + '.' :
        'Permutation importance of each metadata feature, pooled over the sites.') +
        ' Blue: the model relies on the feature; orange: permuting it did not hurt.');
    const features = x.features;
    const overall = Array.isArray(x.overall) ? x.overall : [];
    const order = features.map((f, i) => i)
        .sort((a, b) => (num(overall[b]) || 0) - (num(overall[a]) || 0));
    // One bar per feature: give each its room (CSSOM height, Chart.js follows the box).
    const box = $('chart-importance').parentElement;
    const height = Math.max(260, 22 * features.length + 70) + 'px';
    if (box.style.height !== height) box.style.height = height;
    const values = order.map((i) => num(overall[i]));
    upsertChart('importance', 'chart-importance', 'bar', order.map((i) => features[i]), [
      {label: 'Overall importance', data: values, borderRadius: 3,
       backgroundColor: values.map((v) => (v !== null && v < 0 ? NEGATIVE_COLOR : METRIC_COLORS.importance))},
    ], baseOptions(null, {
      indexAxis: 'y',
      interaction: {mode: 'nearest', intersect: true},
      plugins: {legend: {display: false}},
      scales: {x: {beginAtZero: true, title: {display: true, text: 'importance'}, grid: {color: '#eef2f7'}},
               y: {grid: {display: false}, ticks: {autoSkip: false}}},
    }), false);

    // Per class: features as rows, classes as columns, shaded within each class.
    const classes = Array.isArray(x.classes) ? x.classes : [];
    const imp = Array.isArray(x.importance) ? x.importance : [];
    const rows = Array.isArray(x.rows) ? x.rows : [];
    const table = $('importance-table');
    clear(table.tHead);
    clear(table.tBodies[0]);
    const head = el('tr');
    head.appendChild(el('th', null, 'feature'));
    classes.forEach((c, ci) => {
      const th = el('th', {className: 'num'}, c);
      if (isNum(rows[ci])) th.title = rows[ci] + ' rows';
      head.appendChild(th);
    });
    table.tHead.appendChild(head);
    // One scale for the whole table, so that classes compare.
    const maxAbs = imp.reduce((a, col) => (Array.isArray(col) ? col : []).reduce(
        (b, v) => (isNum(v) && Math.abs(v) > b ? Math.abs(v) : b), a), 0);
    for (const fi of order) {
      const tr = el('tr', {'data-feature': features[fi]});
      tr.appendChild(el('th', null, features[fi]));
      classes.forEach((c, ci) => {
        const v = Array.isArray(imp[ci]) ? num(imp[ci][fi]) : null;
        const td = el('td', {className: 'cell num'}, fmt(v, 4));
        shadeSigned(td, v, maxAbs);
        tr.appendChild(td);
      });
      table.tBodies[0].appendChild(tr);
    }
  }

  function renderEvents() {
    const list = $('events');
    clear(list);
    const recent = st.events.slice(-30).reverse();
    for (const e of recent) {
      const kind = lower(e.kind);
      const li = el('li', {'data-seq': String(e.seq)});
      li.appendChild(el('span', {className: 'ev-time'}, fmtClock(e.unix_ms)));
      li.appendChild(el('span', {className: 'ev-kind' + (BAD_EVENTS.has(kind) ? ' bad' : '')},
                        kind.replace(/_/g, ' ')));
      li.appendChild(el('span', null, isNum(e.round) && e.round > 0 ? 'round ' + e.round : ''));
      li.appendChild(el('span', null, e.site || ''));
      const msg = el('span', {className: 'ev-msg'}, e.message || '');
      msg.title = e.message || '';
      li.appendChild(msg);
      list.appendChild(li);
    }
    $('events-empty').hidden = recent.length > 0;
  }

  // ---------- start ----------
  function tick() {
    updateAges();
    updateDeadline();
  }

  function start() {
    if (!chartOk()) recordError('Chart.js did not load (static/chart.min.js): charts are off');
    else {
      window.Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
      window.Chart.defaults.color = '#5d6b82';
    }
    window.addEventListener('error', (e) => recordError('script error: ' + e.message));
    window.addEventListener('unhandledrejection', (e) => recordError('unhandled: ' +
        (e.reason && e.reason.message ? e.reason.message : e.reason)));
    requestRefresh(true);
    setInterval(tick, 1000);
    let lastAuthTry = 0;
    setInterval(() => {
      if (dash.authError !== null) {
        if (Date.now() - lastAuthTry < AUTH_RETRY_MS) return;
        lastAuthTry = Date.now();
      }
      // Without the event stream, every periodic refresh also looks at rounds.
      requestRefresh(st.eventsUnsupported);
    }, REFRESH_MS);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
