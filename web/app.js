// app.js: draws the report page from /api/report (the same numbers as
// `momentd report --json`). Each chart's canvas also carries what it plotted
// as data-* attributes, so a headless browser test can check that the page
// shows the live data and not just an empty frame.
"use strict";

const STAGES = ["triggered", "follow_ups", "sent", "delivered", "reached", "opened", "converted",
                "declined", "no_answer", "hangup", "complaint", "opt_out", "not_called", "expired"];
const COLORS = ["#3366cc", "#dc3912", "#ff9900", "#109618", "#990099", "#0099c6", "#dd4477"];

function el(tag, attrs, children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children || []) e.append(c);
  return e;
}

function card(title, canvasId) {
  const canvas = el("canvas", {id: canvasId});
  return {node: el("div", {class: "card"}, [el("h3", {}, [title]), canvas]), canvas};
}

function sum(a) { return a.reduce((x, y) => x + y, 0); }

function funnelChart(c, canvas) {
  const channels = c.channels.filter(ch => ch.channel !== "holdout" && ch.counts.triggered > 0);
  const datasets = channels.map((ch, i) => ({
    label: ch.channel, backgroundColor: COLORS[i % COLORS.length],
    data: STAGES.map(s => ch.counts[s]),
  }));
  canvas.dataset.kind = "funnel";
  canvas.dataset.channels = channels.map(ch => ch.channel).join(",");
  canvas.dataset.triggered = String(sum(channels.map(ch => ch.counts.triggered)));
  new Chart(canvas, {type: "bar", data: {labels: STAGES, datasets},
    options: {animation: false, responsive: true, plugins: {legend: {position: "bottom"},
      subtitle: {display: channels.length === 0, text: "no triggers in these days"}}}});
}

function dailyChart(c, canvas) {
  const labels = c.days.map(d => d.day);
  const series = [["triggers (treated)", "triggered", "#3366cc"], ["conversions (treated)", "conversions", "#109618"],
                  ["triggers (holdout)", "holdout_triggered", "#999999"], ["conversions (holdout)", "holdout_conversions", "#dc3912"]];
  canvas.dataset.kind = "daily";
  canvas.dataset.days = String(labels.length);
  canvas.dataset.triggered = String(sum(c.days.map(d => d.triggered)));
  canvas.dataset.conversions = String(sum(c.days.map(d => d.conversions)));
  new Chart(canvas, {type: "line", data: {labels, datasets: series.map(([label, key, color]) => ({
      label, data: c.days.map(d => d[key]), borderColor: color, backgroundColor: color, tension: 0.2, pointRadius: 1}))},
    options: {animation: false, responsive: true, plugins: {legend: {position: "bottom"}}}});
}

function upliftChart(c, canvas) {
  const u = c.uplift;
  canvas.dataset.kind = "uplift";
  canvas.dataset.treatedRate = String(u.treated_rate);
  canvas.dataset.holdoutRate = String(u.holdout_rate);
  canvas.dataset.upliftPp = u.uplift_pp === null ? "" : String(u.uplift_pp);
  const labels = ["treated conversion %", "holdout conversion %", "uplift (points, 95% CI)"];
  const bars = [100 * u.treated_rate, 100 * u.holdout_rate, u.uplift_pp === null ? 0 : u.uplift_pp];
  const ci = u.ci95_pp ? [null, null, u.ci95_pp] : [null, null, null];
  new Chart(canvas, {type: "bar", data: {labels, datasets: [
      {label: "value", data: bars, backgroundColor: ["#3366cc", "#999999", "#109618"]},
      {label: "95% interval", data: ci, backgroundColor: "rgba(16,150,24,0.25)", borderColor: "#109618", borderWidth: 1}]},
    options: {animation: false, responsive: true, plugins: {legend: {position: "bottom"},
      subtitle: {display: true, text: `treated ${u.treated_conversions}/${u.treated_triggers}, ` +
                                      `holdout ${u.holdout_conversions}/${u.holdout_triggers}`}}}});
}

function armsChart(c, canvas) {
  canvas.dataset.kind = "arms";
  canvas.dataset.arms = c.arms.map(a => a.arm).join(",");
  canvas.dataset.contacts = String(sum(c.arms.map(a => a.contacts)));
  const labels = c.arms.map(a => `${a.arm} (${a.mode})`);
  new Chart(canvas, {type: "bar", data: {labels, datasets: [
      {label: "contacts", data: c.arms.map(a => a.contacts), backgroundColor: "#3366cc"},
      {label: "conversions", data: c.arms.map(a => a.conversions), backgroundColor: "#109618"},
      {label: "complaints", data: c.arms.map(a => a.complaints), backgroundColor: "#dc3912"},
      {label: "no answer", data: c.arms.map(a => a.no_answer), backgroundColor: "#999999"}]},
    options: {animation: false, responsive: true, plugins: {legend: {position: "bottom"},
      subtitle: {display: true, text: "conversions per contact: " + c.arms.map(a =>
        `${a.arm} ${a.conversions_per_contact === null ? "-" : a.conversions_per_contact.toFixed(3)}`).join(", ")}}}});
}

// Timing: conversions per contact by days since the campaign's previous
// contact (the buckets that had moments), with the 95% interval as a band:
// what a repeat contact after each gap is worth against a first one.
function timingChart(c, canvas) {
  const rows = (c.timing || []).filter(t => t.moments > 0);
  canvas.dataset.kind = "timing";
  canvas.dataset.gaps = rows.map(t => t.gap_days).join(",");
  canvas.dataset.contacts = String(sum(rows.map(t => t.contacts)));
  const rate = t => t.conversions_per_contact;
  new Chart(canvas, {type: "bar", data: {labels: rows.map(t => t.gap_days), datasets: [
      {label: "conversions per contact", data: rows.map(rate), backgroundColor: "#109618"},
      {label: "95% interval", data: rows.map(t => t.conversions_per_contact_ci95), backgroundColor: "rgba(16,150,24,0.25)",
       borderColor: "#109618", borderWidth: 1}]},
    options: {animation: false, responsive: true,
      scales: {x: {title: {display: true, text: "days since the campaign's previous contact"}}, y: {min: 0}},
      plugins: {legend: {position: "bottom"}, subtitle: {display: true, text: "contacts: " +
        rows.map(t => `${t.gap_days} ${t.contacts}`).join(", ")}}}});
}

// Reliability: predicted against observed conversion by decile of p, one
// series per model version, over the decisions whose attribution window has
// closed; the diagonal is a perfectly calibrated model.
function reliabilityChart(c, canvas) {
  const models = c.models || [];
  canvas.dataset.kind = "reliability";
  canvas.dataset.versions = models.map(m => m.version).join(",");
  canvas.dataset.decisions = String(sum(models.map(m => m.decisions)));
  canvas.dataset.drifting = models.filter(m => m.drifting).map(m => m.version).join(",");
  const datasets = models.map((m, i) => ({
    label: `${m.version}${m.running ? " (running)" : ""}`, showLine: true, pointRadius: 4, borderColor: COLORS[i % COLORS.length],
    backgroundColor: COLORS[i % COLORS.length],
    data: m.reliability.filter(d => d.decisions > 0).map(d => ({x: d.predicted, y: d.observed, n: d.decisions})),
  }));
  canvas.dataset.points = String(sum(datasets.map(d => d.data.length)));
  datasets.push({label: "perfectly calibrated", data: [{x: 0, y: 0}, {x: 1, y: 1}], showLine: true, borderDash: [4, 4],
                 borderColor: "#999999", pointRadius: 0});
  const pct = v => v === null ? "-" : (100 * v).toFixed(1);
  const text = models.length === 0 ? "no model decisions with closed attribution windows in these days" :
    models.map(m => `${m.version}: ${m.decisions} decisions, AUC ${m.auc === null ? "-" : m.auc.toFixed(3)}, ` +
      `calibration error ${pct(m.calibration_error)} points${m.drifting ? " (DRIFTING)" : ""}`).join("; ");
  new Chart(canvas, {type: "scatter", data: {datasets},
    options: {animation: false, responsive: true,
      scales: {x: {min: 0, max: 1, title: {display: true, text: "predicted p (decile mean)"}},
               y: {min: 0, max: 1, title: {display: true, text: "observed conversion"}}},
      plugins: {legend: {position: "bottom"}, subtitle: {display: true, text},
        tooltip: {callbacks: {label: ctx => ctx.raw.n === undefined ? "" :
          `${pct(ctx.raw.x)}% predicted, ${pct(ctx.raw.y)}% observed, ${ctx.raw.n} decisions`}}}}});
}

function table(c) {
  const head = el("tr", {}, [el("th", {}, ["channel"]), ...STAGES.map(s => el("th", {}, [s]))]);
  const rows = c.channels.filter(ch => ch.counts.triggered > 0).map(ch => el("tr", {}, [
    el("td", {}, [ch.channel]),
    ...STAGES.map(s => el("td", {}, [String(ch.counts[s]) +
      (s !== "triggered" && ch.rates[s] !== null ? ` (${(100 * ch.rates[s]).toFixed(1)}%)` : "")]))]));
  return el("table", {}, [head, ...rows]);
}

async function load(from, to) {
  const status = document.getElementById("status");
  const q = new URLSearchParams();
  if (from) q.set("from", from);
  if (to) q.set("to", to);
  const res = await fetch("/api/report?" + q.toString(), token ? {headers: {Authorization: "Bearer " + token}} : {});
  const r = await res.json();
  if (!res.ok) throw new Error(r.error || res.statusText);
  document.getElementById("from").value = r.from;
  document.getElementById("to").value = r.to;
  const root = document.getElementById("campaigns");
  root.replaceChildren();
  let charts = 0;
  for (const [i, c] of r.campaigns.entries()) {
    const f = card("funnel per channel", `funnel-${i}`), d = card("triggers and conversions per day", `daily-${i}`),
          u = card("conversion: treated vs holdout", `uplift-${i}`);
    const cards = [f.node, d.node, u.node];
    const m = card("model reliability: predicted against observed, by decile", `reliability-${i}`);
    cards.push(m.node);
    const a = c.arms.length ? card("policy arms: contact policy against contact policy", `arms-${i}`) : null;
    if (a) cards.push(a.node);
    const timed = (c.timing || []).some(t => t.moments > 0);
    const t = timed ? card("timing: conversions per contact by days since the previous contact", `timing-${i}`) : null;
    if (t) cards.push(t.node);
    root.append(el("h2", {}, [`campaign ${c.campaign}`]), el("div", {class: "grid"}, cards), table(c));
    funnelChart(c, f.canvas);
    dailyChart(c, d.canvas);
    upliftChart(c, u.canvas);
    reliabilityChart(c, m.canvas);
    charts += 4;
    if (a) {
      armsChart(c, a.canvas);
      charts += 1;
    }
    if (t) {
      timingChart(c, t.canvas);
      charts += 1;
    }
  }
  status.className = "";
  status.textContent = `${r.campaigns.length} campaigns, ${charts} charts, days ${r.from} to ${r.to}`;
  document.body.dataset.rendered = String(charts);
}

document.getElementById("range").addEventListener("submit", ev => {
  ev.preventDefault();
  load(document.getElementById("from").value, document.getElementById("to").value).catch(fail);
});

function fail(e) {
  const status = document.getElementById("status");
  status.className = "error";
  status.textContent = "cannot load the report: " + e.message;
  document.body.dataset.rendered = "error";
}

// With http.token set the data needs it: the page is opened as
// /#token=TOKEN (a fragment never reaches the server, its logs or a proxy's),
// keeps it for this tab only and takes it out of the address bar.
const token = (() => {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromHash) {
    sessionStorage.setItem("momentd-token", fromHash);
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem("momentd-token");
})();

const params = new URLSearchParams(location.search);
load(params.get("from"), params.get("to")).catch(fail);
