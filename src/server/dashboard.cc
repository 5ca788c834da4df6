#include "server/dashboard.h"

namespace nines::server {

// One page, no external assets (the Content-Security-Policy of / forbids them). The admin
// token comes from the URL fragment (#token=..., never sent to the server in a URL) or
// from the form, and stays in sessionStorage. Every figure has an id so the chromium test
// can compare it with /v1/fleet.
const std::string& dashboard_html() {
  static const std::string kPage = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>nines fleet</title>
<style>
  :root { --fg:#1d2330; --muted:#667085; --bg:#f6f7f9; --card:#fff; --ok:#1f9d55;
          --warn:#d98e04; --bad:#d64545; --info:#2f6fde; --line:#e4e7ec; }
  * { box-sizing: border-box; }
  body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
         color:var(--fg); background:var(--bg); }
  header { display:flex; align-items:center; gap:16px; padding:14px 24px; background:#111827;
           color:#fff; }
  header h1 { font-size:18px; margin:0; letter-spacing:.5px; }
  header .sub { color:#9ca3af; font-size:12px; }
  main { padding:20px 24px; max-width:1400px; }
  .cards { display:grid; grid-template-columns:repeat(auto-fit,minmax(150px,1fr)); gap:12px; }
  .card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:12px 14px; }
  .card .n { font-size:26px; font-weight:600; }
  .card .l { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.4px; }
  .up-to-date { color:var(--ok); } .pending { color:var(--info); }
  .deferred { color:var(--warn); } .failed { color:var(--bad); }
  section { margin-top:22px; background:var(--card); border:1px solid var(--line);
            border-radius:8px; padding:14px 16px; }
  section h2 { font-size:15px; margin:0 0 10px; }
  table { width:100%; border-collapse:collapse; }
  th, td { text-align:left; padding:6px 8px; border-bottom:1px solid var(--line); font-size:13px; }
  th { color:var(--muted); font-weight:500; font-size:12px; }
  td:first-child { white-space:nowrap; }
  td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
  .bar { display:flex; height:10px; width:180px; border-radius:5px; overflow:hidden; background:#eef0f3; }
  .bar span { display:block; height:100%; }
  .bar .a { background:var(--ok); } .bar .f { background:var(--bad); }
  .bar .d { background:var(--warn); } .bar .p { background:#c7d2fe; }
  .sev-critical { color:#fff; background:#b42318; } .sev-high { color:#fff; background:#d64545; }
  .sev-medium { background:#fde68a; } .sev-low, .sev-negligible { background:#e5e7eb; }
  .pill { padding:1px 7px; border-radius:9px; font-size:11px; }
  .empty { color:var(--muted); font-style:italic; }
  #login { max-width:480px; margin:60px auto; background:var(--card); padding:20px;
           border:1px solid var(--line); border-radius:8px; }
  #login input { width:100%; padding:8px; font:inherit; margin:8px 0; }
  #error { color:var(--bad); margin:12px 0; white-space:pre-wrap; }
  .two { display:grid; grid-template-columns:1fr 1fr; gap:16px; }
  @media (max-width: 900px) { .two { grid-template-columns:1fr; } }
</style>
</head>
<body data-state="loading">
<header>
  <h1>nines</h1><span class="sub">fleet dashboard</span>
  <span class="sub" id="updated"></span>
</header>
<div id="login" hidden>
  <b>Admin token</b>
  <form id="login-form"><input id="token" type="password" autocomplete="off"
    placeholder="n9a_..."><button>Show the fleet</button></form>
</div>
<main id="main" hidden>
  <div id="error"></div>
  <div class="cards">
    <div class="card"><div class="n" id="machines-total">-</div><div class="l">machines</div></div>
    <div class="card"><div class="n up-to-date" id="state-up-to-date">-</div><div class="l">up to date</div></div>
    <div class="card"><div class="n pending" id="state-pending">-</div><div class="l">pending</div></div>
    <div class="card"><div class="n deferred" id="state-deferred">-</div><div class="l">deferred</div></div>
    <div class="card"><div class="n failed" id="state-failed">-</div><div class="l">failed</div></div>
    <div class="card"><div class="n failed" id="reboot-count">-</div><div class="l">need a reboot</div></div>
    <div class="card"><div class="n" id="cves-published">-</div><div class="l">CVEs published</div></div>
    <div class="card"><div class="n up-to-date" id="cves-applied">-</div><div class="l">CVEs applied (somewhere)</div></div>
    <div class="card"><div class="n up-to-date" id="cves-everywhere">-</div><div class="l">CVEs fixed fleet-wide</div></div>
  </div>
  <section>
    <h2>Exposure window per CVE <span class="sub">(publication to applied, per machine)</span></h2>
    <table id="cves"><thead><tr><th>CVE</th><th>severity</th><th>published</th>
      <th class="num">machines</th><th class="num">applied</th><th class="num">exposed</th>
      <th class="num">median window</th><th class="num">longest closed</th>
      <th class="num">longest open</th></tr></thead><tbody></tbody></table>
  </section>
  <div class="two">
    <section>
      <h2>Rollout per tier</h2>
      <table id="rollout"><thead><tr><th>patch</th><th>tier</th><th class="num">targeted</th>
        <th class="num">applied</th><th class="num">failed</th><th class="num">deferred</th>
        <th class="num">pending</th><th></th></tr></thead><tbody></tbody></table>
    </section>
    <section>
      <h2>Machines needing a reboot</h2>
      <table id="reboot"><thead><tr><th>machine</th><th>why</th></tr></thead><tbody></tbody></table>
    </section>
  </div>
  <section>
    <h2>Machines</h2>
    <table id="machines"><thead><tr><th>machine</th><th>tier</th><th>state</th>
      <th class="num">applied</th><th>kernel</th><th>last seen</th><th>reboot</th>
      <th>catalogue</th></tr></thead>
      <tbody></tbody></table>
  </section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
function text(s) { return document.createTextNode(s == null ? "" : String(s)); }
function td(v, cls) { const c = document.createElement("td"); if (cls) c.className = cls;
  if (v instanceof Node) c.appendChild(v); else c.appendChild(text(v)); return c; }
function row(cells, attrs) { const r = document.createElement("tr");
  for (const [k, v] of Object.entries(attrs || {})) r.setAttribute(k, v);
  cells.forEach((c) => r.appendChild(c)); return r; }
function fill(id, rows, cols) { const b = $(id).tBodies[0]; b.replaceChildren();
  if (!rows.length) b.appendChild(row([td("none", "empty")])).firstChild.colSpan = cols;
  else rows.forEach((r) => b.appendChild(r)); }
function dur(s) { if (!s) return "0s"; const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600),
  m = Math.floor(s % 3600 / 60); return d ? d + "d " + h + "h" : h ? h + "h " + m + "m" : m ? m + "m" : s + "s"; }
function when(u) { return u ? new Date(u * 1000).toISOString().replace(".000Z", "Z") : "never"; }
function pill(s, cls) { const p = document.createElement("span"); p.className = "pill " + cls;
  p.textContent = s; return p; }
function bar(r) { const b = document.createElement("div"); b.className = "bar";
  const t = Math.max(1, r.machines_targeted);
  for (const [k, c] of [["applied", "a"], ["failed", "f"], ["deferred", "d"], ["pending", "p"]]) {
    const s = document.createElement("span"); s.className = c; s.style.width = (100 * r[k] / t) + "%";
    b.appendChild(s); }
  return b; }

// What the machine last reported of its catalogue's freshness (docs/SECURITY.md).
function catalogue(c) {
  if (!c) return "-";
  if (c.state !== "stale") return "fresh";
  return "stale since " + (c.since || "?") + (c.reason ? " (" + c.reason + ")" : ""); }

function render(f) {
  $("machines-total").textContent = f.machines.total;
  for (const s of ["up-to-date", "pending", "deferred", "failed"])
    $("state-" + s).textContent = f.machines.by_state[s];
  $("reboot-count").textContent = f.machines.needing_reboot;
  $("cves-published").textContent = f.cves_published;
  $("cves-applied").textContent = f.cves_applied;
  $("cves-everywhere").textContent = f.cves_applied_everywhere;
  fill("cves", f.cves.map((c) => row([td(c.id), td(pill(c.severity, "sev-" + c.severity)),
    td(when(c.published_unix)), td(c.machines_affected, "num"), td(c.machines_applied, "num"),
    td(c.machines_affected - c.machines_applied, "num"), td(dur(c.exposure_median_s), "num"),
    td(dur(c.exposure_max_s), "num"), td(dur(c.open_exposure_max_s), "num")],
    {"data-cve": c.id})), 9);
  fill("rollout", f.rollout.map((r) => row([td(r.id + " v" + r.version), td(r.tier),
    td(r.machines_targeted, "num"), td(r.applied, "num"), td(r.failed, "num"),
    td(r.deferred, "num"), td(r.pending, "num"), td(bar(r))],
    {"data-rollout": r.id + "/" + r.version + "/" + r.tier})), 8);
  fill("reboot", f.reboot.map((m) => row([td(m.name ? m.machine_id + " (" + m.name + ")" : m.machine_id),
    td((m.reasons || []).join("; "))], {"data-machine": m.machine_id})), 2);
  fill("machines", f.machine_list.map((m) => row([td(m.machine_id), td(m.tier),
    td(pill(m.state, m.state)), td(m.applied + "/" + m.offered, "num"), td(m.kernel_release),
    td(when(m.last_seen_unix)), td(m.needs_reboot ? "yes" : "-"), td(catalogue(m.catalogue))],
    {"data-machine": m.machine_id, "data-state": m.state})), 8);
  $("updated").textContent = "as of " + when(f.now_unix);
}

async function load(token) {
  $("login").hidden = true; $("main").hidden = false;
  try {
    const r = await fetch("/v1/fleet", {headers: {"Authorization": "Bearer " + token}});
    const body = await r.json();
    if (!r.ok) throw new Error(body.error || ("HTTP " + r.status));
    $("error").textContent = "";
    render(body);
    document.body.dataset.state = "ready";
  } catch (e) {
    $("error").textContent = "cannot load /v1/fleet: " + e.message;
    document.body.dataset.state = "error";
    if (String(e.message).includes("token")) { sessionStorage.removeItem("nines-token"); }
  }
}

function start() {
  const m = location.hash.match(/token=([A-Za-z0-9_]+)/);
  if (m) { sessionStorage.setItem("nines-token", m[1]); history.replaceState(null, "", location.pathname); }
  const token = sessionStorage.getItem("nines-token");
  if (!token) { $("login").hidden = false; document.body.dataset.state = "login"; return; }
  load(token);
  setInterval(() => load(token), 30000);
}
$("login-form").addEventListener("submit", (e) => { e.preventDefault();
  sessionStorage.setItem("nines-token", $("token").value.trim()); start(); });
start();
</script>
</body>
</html>
)html";
  return kPage;
}

}  // namespace nines::server
