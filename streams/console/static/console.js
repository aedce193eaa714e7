// tickwise console: renders the state the server pushes (server-sent events) and sends
// operator controls. Reading and controlling both need the bearer token the user typed (a
// viewer's or an operator's); the page itself shows nothing until one is accepted. Text from
// topics is only ever set with textContent, never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const RETRY_MS = 2000;
let token = sessionStorage.getItem("tickwise-token") || "";
let state = null;
let stream = null; // AbortController of the open event stream

function fmt(x, digits = 2) {
  if (x === null || x === undefined) return "–";
  return Number(x).toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "–" : String(text);
  if (cls) td.className = cls;
  return td;
}

function badge(text) {
  const span = document.createElement("span");
  span.className = "badge " + text;
  span.textContent = text;
  return span;
}

function fill(tableId, rows) {
  const body = $(tableId).querySelector("tbody");
  body.replaceChildren(...rows);
}

function row(cells, attrs = {}) {
  const tr = document.createElement("tr");
  for (const [k, v] of Object.entries(attrs)) tr.setAttribute(k, v);
  tr.append(...cells);
  return tr;
}

function signed(x) {
  return x === null || x === undefined ? "" : x >= 0 ? "num pos" : "num neg";
}

function render(s) {
  state = s;
  const names = Object.keys(s.instruments);
  fill("instruments", names.map((name) => {
    const i = s.instruments[name];
    const risk = document.createElement("td");
    risk.id = "risk-" + name;
    risk.append(badge(i.risk_state));
    const d = i.last_decision;
    const last = !d ? "" : d.holds ? `HOLD x${d.holds} (${Object.keys(d.reasons).join("; ") || "no reason"})`
      : `${d.action} ${fmt(d.quantity, 0)} @ ${fmt(d.price)} ${d.approved ? "approved" : "rejected: " + d.reject_reasons.join(", ")}`;
    return row([cell(name), cell(fmt(i.last_price), "num"), cell(fmt(i.position, 0), "num"),
      cell(fmt(i.pnl), signed(i.pnl)), cell(fmt(i.realized_pnl), signed(i.realized_pnl)), risk,
      cell(i.decisions, "num"), cell(i.approved_orders, "num"), cell(i.fills, "num"), cell(last)],
      { "data-instrument": name });
  }));
  const sigRows = [];
  for (const name of names) {
    for (const g of s.instruments[name].signals.slice(0, 3)) {
      sigRows.push(row([cell(name), cell(g.model), cell(g.stage), cell(g.side, g.side),
        cell(fmt(g.score, 3), "num"), cell(fmt(g.confidence, 2), "num"), cell(g.explanation, "expl")],
        { class: "signal" }));
    }
  }
  fill("signals", sigRows);
  fill("models", s.models.map((m) => row([cell(m.instrument), cell(m.model),
    cell(Object.entries(m.stages).map(([k, v]) => `${k} ${v}`).join(", ")),
    cell(m.accuracy === null ? "–" : (100 * m.accuracy).toFixed(1) + "%", "num"),
    cell(m.outcomes, "num"), cell(m.trades, "num")])));
  const counted = (obj, none) => {
    const rows = Object.entries(obj).map(([r, n]) => row([cell(r), cell(n, "num")]));
    return rows.length ? rows : [row([cell(none, "muted")])];
  };
  fill("quality", counted(s.quality, "no tick quarantined"));
  fill("rejections", counted(s.rejections, "no order rejected"));
  $("alert-counts").textContent = Object.entries(s.alert_counts).map(([c, n]) => `${c}: ${n}`).join("  ·  ") || "no alerts";
  fill("alerts", s.alerts.slice(0, 10).map((a) => {
    const sev = document.createElement("td");
    sev.append(badge(a.severity));
    return row([sev, cell(a.code), cell(a.instrument || a.model || ""), cell(a.detail, "expl")]);
  }));
  fill("audit", s.audit.map((a) => {
    const st = document.createElement("td");
    st.append(badge(a.trading_state));
    return row([cell(a.instrument), cell(a.seq, "num"), cell(a.command), cell(a.scope),
      cell(a.operator), cell(a.reason, "expl"), st], { class: "audit-row", "data-operator": a.operator || "" });
  }));
  fill("commands", s.controls.map((c) => row([cell(new Date(c.ts_event_ns / 1e6).toISOString().slice(0, 19)),
    cell(c.command), cell(c.scope), cell(c.model || ""), cell(c.operator), cell(c.reason, "expl")])));
  const g = s.kill_switches.global;
  const ks = $("global-ks");
  ks.textContent = g && g.on ? `global kill switch ON (${g.operator})` : "global: ACTIVE";
  ks.className = "badge " + (g && g.on ? "HALTED" : "ok");
  const c = s.counts;
  $("counts").textContent = `signals ${c.signals || 0} · decisions ${c.decisions || 0} · fills ${c.fills || 0} · audit ${c.audit || 0} · quarantined ${c["ticks.quarantine"] || 0}`;
  renderWatch(s.watch);
  const scope = $("ks-scope");
  const have = new Set(Array.from(scope.options).map((o) => o.value));
  for (const name of names) {
    if (!have.has(name)) scope.add(new Option(name, name));
  }
}

// Charts of the watchtower's windows (uPlot, shipped in /static/uplot/): one per figure, for
// the instrument chosen, and the workers' lag over the watchtower's recent looks. The series
// come ready-made in the pushed state (state.watch.charts, state.watch.lag): the page only
// hands them to uPlot. window.tickwiseCharts names the charts drawn, for a look from devtools.
const CHARTS = [
  { id: "pnl", title: "P&L over the windows", series: [["pnl", "marked", "#1f6feb"], ["realized_pnl", "realized", "#8250df"]] },
  { id: "position", title: "position at each window's end", series: [["position", "position", "#1b7a35"]], stepped: true },
  { id: "orders", title: "orders and refusals per window", series: [["orders", "orders", "#1f6feb"], ["refusals", "refusals", "#b42318"]], bars: true, fromZero: true },
  { id: "accuracy", title: "model accuracy per window", series: [["accuracy", "accuracy", "#7a5b00"]], range: [0, 1] },
  { id: "lag", title: "workers' lag on ticks.raw (messages)", series: [["lag", "lag", "#9b1c1c"]], lag: true, fromZero: true },
];
const drawn = {};
window.tickwiseCharts = drawn;

function chartData(spec, w, instrument) {
  const cols = spec.lag ? w.lag : (w.charts || {})[instrument];
  if (!cols) return null;
  return [cols.t, ...spec.series.map(([key]) => cols[key])];
}

function chartOptions(spec, width) {
  const paths = spec.bars && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.6, 40] })
    : spec.stepped && uPlot.paths.stepped ? uPlot.paths.stepped({ align: 1 }) : undefined;
  return {
    title: spec.title, width, height: 190,
    scales: {
      x: { time: true },
      // counts from zero, accuracy on 0..1, the rest around their data; recomputed on each update
      y: spec.range ? { range: () => spec.range }
        : spec.fromZero ? { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } : { auto: true },
    },
    axes: [{}, { size: 64 }], // room for "10,000" beside the y axis
    series: [{}, ...spec.series.map(([, label, color]) => ({
      label, stroke: color, width: 1.5, paths, fill: spec.bars ? color + "55" : undefined,
      points: { show: false }, spanGaps: false,
    }))],
  };
}

function renderCharts(w) {
  const select = $("chart-instrument");
  const names = Object.keys(w.charts || {});
  const have = new Set(Array.from(select.options).map((o) => o.value));
  for (const name of names) if (!have.has(name)) select.add(new Option(name, name));
  const instrument = select.value || names[0];
  $("chart-note").textContent = w.tumbling_s ? `tumbling windows of ${w.tumbling_s} s, event time; lag by wall time` : "";
  const box = $("charts");
  for (const spec of CHARTS) {
    let div = box.querySelector(`div[data-chart="${spec.id}"]`);
    if (!div) { // every chart's place, in the order above, before any has data
      div = document.createElement("div");
      div.className = "chart";
      div.dataset.chart = spec.id;
      box.append(div);
    }
    const data = chartData(spec, w, instrument);
    if (!data) continue;
    if (drawn[spec.id]) drawn[spec.id].setData(data);
    else drawn[spec.id] = new uPlot(chartOptions(spec, Math.max(380, div.clientWidth || 420)), data, div);
  }
}

function renderWatch(w) {
  if (!w) return;
  $("watch-source").textContent = w.error ? `${w.url}: ${w.error}` : `from ${w.url}`;
  $("watch-source").className = w.error ? "badge off" : "muted";
  const h = w.health;
  if (h && h.last_look) {
    const k = h.workers;
    const stale = Object.entries(h.feeds || {}).filter(([, f]) => f.stale).map(([n]) => n);
    const firing = (h.firing || []).map((f) => `${f.code} ${f.subject}`);
    $("health").textContent = [
      k ? `workers ${k.group}: ${k.members} member(s), lag ${k.lag} (limit ${k.max_lag})` : "workers: unknown",
      `broker ${h.broker.reachable ? "reachable" : "UNREACHABLE"}`,
      `stale feeds: ${stale.join(", ") || "none"}`,
      `alarms on: ${firing.join(", ") || "none"}`,
      `last look ${new Date(h.last_look * 1000).toISOString().slice(11, 19)} UTC`,
    ].join("  ·  ");
  }
  renderCharts(w);
}

function conn(text, ok) {
  $("conn").textContent = text;
  $("conn").className = "badge " + (ok ? "ok" : "off");
}

// One server-sent event block ("event: state" and "data: ..." lines).
function onEvent(block) {
  let type = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue; // keep-alive comment
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") type = value;
    else if (field === "data") data.push(value);
  }
  if (type === "state" && data.length) render(JSON.parse(data.join("\n")));
}

// The event stream, read with fetch rather than EventSource: EventSource cannot send an
// Authorization header, and a fetch carries the same bearer token as every other call, so the
// token never goes into a URL or a cookie. Reconnects after RETRY_MS while logged in.
async function follow() {
  if (stream) stream.abort();
  const ctl = new AbortController();
  stream = ctl;
  while (token && !ctl.signal.aborted) {
    try {
      const response = await fetch("/api/events", {
        headers: { "Authorization": "Bearer " + token }, signal: ctl.signal, cache: "no-store",
      });
      if (response.status === 401 || response.status === 403) {
        logout("the console refused the token: log in again");
        return;
      }
      if (!response.ok) throw new Error(response.status + " " + response.statusText);
      conn("live", true);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          onEvent(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } catch (err) {
      if (ctl.signal.aborted) return;
    }
    conn("reconnecting…", false);
    await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
  }
}

async function api(path, body) {
  const response = await fetch(path, {
    method: body === undefined ? "GET" : "POST",
    headers: { "Authorization": "Bearer " + token, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || response.status + " " + response.statusText);
  return data;
}

async function login(newToken) {
  token = newToken;
  try {
    const me = await api("/api/whoami");
    sessionStorage.setItem("tickwise-token", token);
    $("whoami").textContent = `${me.name} (${me.role})`;
    $("whoami").dataset.role = me.role;
    $("control-fields").disabled = me.role !== "operator";
    $("login-token").hidden = true; $("login-button").hidden = true; $("logout-button").hidden = false;
    follow();
  } catch (err) {
    logout("login failed: " + err.message);
  }
}

// Forget the token, stop the stream and blank the page: what it showed needed the token.
function logout(message) {
  token = "";
  sessionStorage.removeItem("tickwise-token");
  if (stream) stream.abort();
  stream = null;
  if (state) {
    if (message) sessionStorage.setItem("tickwise-notice", message);
    location.reload();
    return;
  }
  $("whoami").textContent = message || sessionStorage.getItem("tickwise-notice")
    || "not logged in: a viewer or operator token shows the desk";
  sessionStorage.removeItem("tickwise-notice");
  $("control-fields").disabled = true;
  conn("logged out", false);
  $("login-token").hidden = false; $("login-button").hidden = false; $("logout-button").hidden = true;
}

async function control(path, body) {
  const reason = $("reason").value.trim();
  if (!reason) { $("control-result").textContent = "a reason is required"; return; }
  try {
    const out = await api(path, { ...body, reason });
    $("control-result").textContent = `sent ${out.command_id} as ${out.operator}`;
  } catch (err) {
    $("control-result").textContent = "refused: " + err.message;
  }
}

$("login-button").onclick = () => login($("login-token").value);
$("login-token").onkeydown = (e) => { if (e.key === "Enter") login($("login-token").value); };
$("logout-button").onclick = () => logout();
$("ks-on").onclick = () => control("/api/control/kill-switch", { state: "on", scope: $("ks-scope").value });
$("ks-off").onclick = () => control("/api/control/kill-switch", { state: "off", scope: $("ks-scope").value });
$("promote").onclick = () => control("/api/control/promote", { model: $("model-key").value, stage: $("model-stage").value });
$("rollback").onclick = () => control("/api/control/rollback", {});
$("chart-instrument").onchange = () => { if (state && state.watch) renderCharts(state.watch); };
if (token) login(token); else logout();
