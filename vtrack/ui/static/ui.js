// vtrack ui: the little JavaScript the pages need (no build step, no framework).
// Runs table: selection in the URL, column chooser, tree folding, live refresh of running
// rows. Run and compare pages: metric charts that fetch exact points on zoom, the
// "only differences" toggle, parallel coordinates and a scatter plot.
"use strict";

const fmtInt = (n) => Number(n).toLocaleString("en-US");

function setParam(name, value) {
  const url = new URL(window.location.href);
  if (value) url.searchParams.set(name, value); else url.searchParams.delete(name);
  window.history.replaceState(null, "", url.toString());
  return url;
}

// -- runs table -------------------------------------------------------------------------

function initRuns() {
  const table = document.getElementById("runs");
  const selField = document.getElementById("sel-field");
  const compare = document.getElementById("compare");
  const count = document.getElementById("sel-count");
  const csv = document.getElementById("csv");
  const selected = new Set((selField.value || "").split(",").filter(Boolean));

  function syncSelection() {
    const ids = [...selected];
    selField.value = ids.join(",");
    compare.href = "/compare?runs=" + ids.join(",");
    count.textContent = String(ids.length);
    const url = setParam("sel", ids.join(","));
    csv.href = "/api/runs.csv" + url.search;
    document.querySelectorAll("a.sort, .pager a").forEach((a) => {
      const u = new URL(a.href);
      if (ids.length) u.searchParams.set("sel", ids.join(",")); else u.searchParams.delete("sel");
      a.href = u.toString();
    });
  }
  table.addEventListener("change", (ev) => {
    const box = ev.target;
    if (box.classList.contains("pick")) {
      if (box.checked) selected.add(box.value); else selected.delete(box.value);
      syncSelection();
    }
  });
  const all = document.getElementById("select-all");
  all.addEventListener("change", () => {
    table.querySelectorAll("input.pick").forEach((b) => {
      b.checked = all.checked;
      if (all.checked) selected.add(b.value); else selected.delete(b.value);
    });
    syncSelection();
  });

  // the tree: a parent's twisty folds every descendant row
  table.addEventListener("click", (ev) => {
    const btn = ev.target.closest("button.twisty");
    if (!btn) return;
    const row = btn.closest("tr");
    const open = btn.getAttribute("aria-expanded") === "true";
    btn.setAttribute("aria-expanded", open ? "false" : "true");
    btn.textContent = open ? "▸" : "▾";
    const depth = Number(row.dataset.depth);
    for (let r = row.nextElementSibling; r && Number(r.dataset.depth) > depth; r = r.nextElementSibling) {
      r.classList.toggle("collapsed-child", open);
    }
  });

  // the column chooser writes the column specs (with aggregates) into one field
  const form = document.getElementById("columns-form");
  form.addEventListener("submit", () => {
    const current = (table.dataset.cols || "").split(",").filter(Boolean);
    const chosen = [];
    form.querySelectorAll("input.col").forEach((box) => {
      if (!box.checked) return;
      let spec = box.value;
      if (box.classList.contains("metric")) {
        const agg = form.querySelector(`select.agg[data-key="${CSS.escape(spec)}"]`).value;
        const step = form.querySelector(`input.agg-step[data-key="${CSS.escape(spec)}"]`).value;
        if (agg === "step") spec += ":step=" + (step || "0");
        else if (agg !== "last") spec += ":" + agg;
      }
      chosen.push(spec);
    });
    const base = (s) => s.split(":")[0];
    const ordered = current.map((c) => chosen.find((s) => base(s) === base(c))).filter(Boolean);
    chosen.forEach((s) => { if (!ordered.includes(s)) ordered.push(s); });
    document.getElementById("cols-field").value = ordered.join(",");
  });

  // a filter error puts the cursor where the error is
  const err = document.getElementById("filter-error");
  if (err && err.dataset.column) {
    const input = document.getElementById("filter");
    const at = Math.max(0, Number(err.dataset.column) - 1);
    input.focus();
    input.setSelectionRange(at, at);
  }

  const exp = document.getElementById("exp");
  exp.addEventListener("change", () => document.getElementById("filter-form").submit());

  liveRows(table);
}

function liveRows(table) {
  const every = Number(document.body.dataset.poll) || 2000;
  async function tick() {
    const live = [...table.querySelectorAll("tbody tr")].filter(
      (r) => r.dataset.status === "RUNNING" || r.dataset.status === "SCHEDULED");
    if (!live.length) return;  // nothing live on this page: stop polling
    try {
      const q = new URLSearchParams({ids: live.map((r) => r.dataset.run).join(","), cols: table.dataset.cols});
      const resp = await fetch("/api/rows?" + q);
      if (resp.ok) {
        const data = await resp.json();
        data.rows.forEach((row) => updateRow(table, row));
      }
    } catch (e) { /* the server went away: try again later */ }
    window.setTimeout(tick, every);
  }
  window.setTimeout(tick, every);
}

function updateRow(table, row) {
  const tr = table.querySelector(`tr[data-run="${row.run_id}"]`);
  if (!tr) return;
  tr.dataset.status = row.status;
  const specs = table.dataset.cols.split(",");
  specs.forEach((spec, i) => {
    const td = tr.querySelector(`td[data-spec="${CSS.escape(spec)}"]`);
    if (!td) return;
    const text = row.text[i];
    const target = td.querySelector(".badge, a") || td;
    if (target.textContent.trim() === text) return;  // only what changed
    if (target.classList.contains("badge")) target.className = "badge status-" + text.toLowerCase();
    if (target === td) {
      const twisty = td.querySelector("button.twisty");
      td.textContent = text;
      if (twisty) td.prepend(twisty);
    } else {
      target.textContent = text;
    }
    td.classList.add("updated");
  });
}

// -- charts -------------------------------------------------------------------------------

function smooth(ys, alpha) {
  if (!alpha) return ys;
  const out = [];
  let last = 0, weight = 0;
  for (const y of ys) {
    last = alpha * last + (1 - alpha) * y;
    weight = alpha * weight + (1 - alpha);
    out.push(last / weight);
  }
  return out;
}

function toNumber(v, axis) {
  if (typeof v === "number") return v;
  if (axis === "time") return new Date(String(v).replace(" ", "T") + "Z").getTime();
  return Number(v);
}

function initChart(panel) {
  const el = panel.querySelector(".chart");
  const note = panel.querySelector(".chart-note");
  const runs = (panel.dataset.runs || "").split(",").filter(Boolean);
  let range = null;
  let seq = 0;
  let bound = false;

  async function draw() {
    const mine = ++seq;
    const keys = [...panel.querySelectorAll("input.series:checked")].map((i) => i.value);
    const axis = panel.querySelector(".xaxis").value;
    const logy = panel.querySelector(".logy").checked;
    const alpha = Number(panel.querySelector(".smooth").value);
    // the first view asks for the budget the page preloaded; zooms ask for 2 points a pixel
    const first = Number(panel.dataset.budget || 0);
    const budget = (!range && first) ? first : Math.min(20000, Math.max(400, 2 * (el.clientWidth || 800)));
    const asks = [];
    for (const run of runs) {
      for (const key of keys) {
        const p = new URLSearchParams({x: axis, budget: String(budget)});
        if (range) { p.set("lo", String(range[0])); p.set("hi", String(range[1])); }
        asks.push(fetch(`/api/history/${run}/${encodeURIComponent(key)}?${p}`)
          .then((r) => r.json()).catch((e) => ({error: String(e)})));
      }
    }
    const results = await Promise.all(asks);
    if (mine !== seq) return;
    const traces = [];
    const notes = [];
    let shown = 0;
    for (const d of results) {
      if (d.error) continue;  // e.g. a run without this metric
      const label = runs.length > 1 ? `${d.run_name} · ${d.key}` : d.key;
      if (d.envelope) {
        traces.push({x: d.envelope.x, y: d.envelope.hi, mode: "lines", line: {width: 0},
                     hoverinfo: "skip", showlegend: false, type: "scatter"});
        traces.push({x: d.envelope.x, y: d.envelope.lo, mode: "lines", line: {width: 0},
                     fill: "tonexty", fillcolor: "rgba(36,87,197,0.15)", hoverinfo: "skip",
                     name: label + " (min–max)", type: "scatter"});
      }
      traces.push({x: d.x, y: smooth(d.y, alpha), name: label, type: "scatter",
                   mode: d.x.length <= 60 ? "lines+markers" : "lines"});
      shown += d.x.length;
      if (d.reduced) {
        notes.push(`${label}: ${fmtInt(d.in_range)} points in view, reduced to ${fmtInt(d.x.length)} ` +
                   `(${d.method}; the band is each bucket's min–max) — zoom in for exact points`);
      } else {
        notes.push(`${label}: all ${fmtInt(d.x.length)} points, exact`);
      }
      if (d.non_finite) notes.push(`${label}: ${fmtInt(d.non_finite)} NaN/inf values not drawn`);
    }
    if (alpha) notes.push(`smoothed (EMA ${alpha})`);
    note.textContent = notes.join(" · ") || "no metric chosen";
    el.dataset.reduced = results.some((d) => d.reduced) ? "1" : "0";
    el.dataset.points = String(shown);
    const layout = {
      margin: {l: 60, r: 20, t: 10, b: 40}, showlegend: true, legend: {orientation: "h"},
      xaxis: {title: {text: axis === "relative" ? "seconds since start" : axis},
              type: axis === "time" ? "date" : "linear"},
      yaxis: {type: logy ? "log" : "linear"},
    };
    if (range) { layout.xaxis.range = range; layout.xaxis.autorange = false; }
    if (typeof Plotly === "undefined") {
      // first view: draw the same points as a plain SVG at once, then load Plotly.js
      // (megabytes of script to parse) and replace the sketch with the interactive chart
      quickPaint(el, traces, logy);
      await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
      if (!(await loadPlotly())) {
        note.textContent = "charts need plotly: pip install \"vtrack[ui]\"";
        return;
      }
      if (mine !== seq) return;
    }
    const sketch = el.querySelector("svg.quick");
    if (sketch) sketch.remove();
    await Plotly.react(el, traces, layout, {displaylogo: false, responsive: true});
    el.dataset.painted = "1";
    // ms since the page was requested: when the chart was first seen, and when interactive
    if (!el.dataset.paintedMs) el.dataset.paintedMs = String(Math.round(performance.now()));
    if (!el.dataset.drawnMs) el.dataset.drawnMs = String(Math.round(performance.now()));
    el.dataset.draws = String(Number(el.dataset.draws || 0) + 1);
    if (!bound) {
      bound = true;
      el.on("plotly_relayout", (ev) => {
        if (ev["xaxis.autorange"]) { range = null; draw(); return; }
        let lo = ev["xaxis.range[0]"], hi = ev["xaxis.range[1]"];
        if (lo === undefined && ev["xaxis.range"]) [lo, hi] = ev["xaxis.range"];
        if (lo === undefined) return;
        const x = panel.querySelector(".xaxis").value;
        range = [toNumber(lo, x), toNumber(hi, x)];
        draw();
      });
    }
  }
  panel.querySelectorAll("input.series, .xaxis, .logy, .smooth").forEach((c) =>
    c.addEventListener("change", () => { if (c.classList.contains("xaxis")) range = null; draw(); }));
  panel.zoomTo = (lo, hi) => { range = [lo, hi]; return draw(); };  // for keyboard users and tests
  draw();
}

let plotlyLoading = null;

// Plotly.js, loaded once on demand (run pages draw a sketch before it arrives).
function loadPlotly() {
  if (typeof Plotly !== "undefined") return Promise.resolve(true);
  if (!document.querySelector('meta[name="vtrack-plotly"]')) return Promise.resolve(false);
  if (!plotlyLoading) {
    plotlyLoading = new Promise((resolve) => {
      const s = document.createElement("script");
      s.src = "/static/plotly.min.js";
      s.onload = () => resolve(true);
      s.onerror = () => resolve(false);
      document.head.appendChild(s);
    });
  }
  return plotlyLoading;
}

// The chart's traces as a static SVG (lines and min–max bands), drawn before Plotly.js.
function quickPaint(el, traces, logy) {
  const NS = "http://www.w3.org/2000/svg";
  const w = el.clientWidth || 800, h = 450, m = {l: 60, r: 20, t: 10, b: 40};
  const ty = (v) => (logy ? (v > 0 ? Math.log10(v) : NaN) : v);
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const t of traces) {
    for (let i = 0; i < t.x.length; i++) {
      const x = Number(t.x[i]), y = ty(t.y[i]);
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y;
    }
  }
  const old = el.querySelector("svg.quick");
  if (old) old.remove();
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("class", "quick");
  svg.setAttribute("width", String(w));
  svg.setAttribute("height", String(h));
  if (x0 > x1) { el.appendChild(svg); return; }
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  if (y0 === y1) { y0 -= 1; y1 += 1; }
  const px = (x) => m.l + ((Number(x) - x0) / (x1 - x0)) * (w - m.l - m.r);
  const py = (y) => h - m.b - ((ty(y) - y0) / (y1 - y0)) * (h - m.t - m.b);
  const pts = (xs, ys) => {
    const out = [];
    for (let i = 0; i < xs.length; i++) {
      const X = px(xs[i]), Y = py(ys[i]);
      if (Number.isFinite(X) && Number.isFinite(Y)) out.push(X.toFixed(1) + "," + Y.toFixed(1));
    }
    return out;
  };
  const colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"];
  let line = 0;
  for (let i = 0; i < traces.length; i++) {
    const t = traces[i];
    if (t.fill === "tonexty" && i > 0) {  // the band between this trace and the one before
      const hi = pts(traces[i - 1].x, traces[i - 1].y), lo = pts(t.x, t.y).reverse();
      const poly = document.createElementNS(NS, "polygon");
      poly.setAttribute("points", hi.concat(lo).join(" "));
      poly.setAttribute("fill", "rgba(36,87,197,0.15)");
      svg.appendChild(poly);
    } else if (!(t.line && t.line.width === 0)) {
      const pl = document.createElementNS(NS, "polyline");
      pl.setAttribute("points", pts(t.x, t.y).join(" "));
      pl.setAttribute("fill", "none");
      pl.setAttribute("stroke", colors[line++ % colors.length]);
      pl.setAttribute("stroke-width", "1.5");
      svg.appendChild(pl);
    }
  }
  const box = document.createElementNS(NS, "rect");
  box.setAttribute("x", String(m.l)); box.setAttribute("y", String(m.t));
  box.setAttribute("width", String(w - m.l - m.r)); box.setAttribute("height", String(h - m.t - m.b));
  box.setAttribute("fill", "none"); box.setAttribute("stroke", "#ccd");
  svg.appendChild(box);
  el.appendChild(svg);
  el.dataset.painted = "1";
  if (!el.dataset.paintedMs) el.dataset.paintedMs = String(Math.round(performance.now()));
}

// -- compare -------------------------------------------------------------------------------

function initCompare() {
  const table = document.getElementById("compare-table");
  const toggle = document.getElementById("only-diff");
  const apply = () => {
    table.classList.toggle("only-diff", toggle.checked);
    setParam("diff", toggle.checked ? "1" : "");
  };
  toggle.addEventListener("change", apply);
  apply();
  const blob = document.getElementById("numeric-data");
  if (!blob || typeof Plotly === "undefined") return;
  const data = JSON.parse(blob.textContent);
  const keys = Object.keys(data.columns);
  if (keys.length >= 2) parallel(document.getElementById("parcoords"), data, keys);
  const sx = document.getElementById("scatter-x"), sy = document.getElementById("scatter-y");
  const scatter = () => {
    if (!keys.length) return;
    Plotly.react("scatter", [{x: data.columns[sx.value], y: data.columns[sy.value], text: data.runs,
      mode: "markers+text", textposition: "top center", type: "scatter"}],
      {margin: {l: 60, r: 20, t: 10, b: 40}, xaxis: {title: {text: sx.value}}, yaxis: {title: {text: sy.value}}},
      {displaylogo: false});
  };
  sx.addEventListener("change", scatter);
  sy.addEventListener("change", scatter);
  scatter();
}

// Parallel coordinates as plain lines (no WebGL): each axis scaled to its own min..max.
function parallel(el, data, keys) {
  const scaled = {};
  keys.forEach((k) => {
    const vs = data.columns[k].map(Number);
    const lo = Math.min(...vs), hi = Math.max(...vs);
    scaled[k] = vs.map((v) => (hi === lo ? 0.5 : (v - lo) / (hi - lo)));
  });
  const traces = data.runs.map((name, i) => ({
    x: keys.map((_, j) => j), y: keys.map((k) => scaled[k][i]), name, type: "scatter",
    mode: "lines+markers", text: keys.map((k) => `${k} = ${data.columns[k][i]}`), hoverinfo: "text+name",
  }));
  const annotations = keys.flatMap((k, j) => {
    const vs = data.columns[k].map(Number);
    return [
      {x: j, y: 1.08, text: k, showarrow: false, yref: "y"},
      {x: j, y: -0.08, text: Math.min(...vs).toPrecision(4), showarrow: false, font: {size: 10}},
      {x: j, y: 1.02, text: Math.max(...vs).toPrecision(4), showarrow: false, font: {size: 10}},
    ];
  });
  Plotly.react(el, traces, {
    margin: {l: 30, r: 30, t: 30, b: 30}, annotations,
    xaxis: {tickvals: keys.map((_, j) => j), ticktext: keys.map(() => ""), showgrid: true, zeroline: false},
    yaxis: {visible: false, range: [-0.15, 1.15]},
  }, {displaylogo: false});
}

document.addEventListener("DOMContentLoaded", () => {
  const page = document.body.dataset.page;
  if (page === "runs") initRuns();
  if (page === "run" || page === "compare") {
    if (typeof Plotly !== "undefined" || document.querySelector('meta[name="vtrack-plotly"]')) {
      document.querySelectorAll(".chart-panel").forEach(initChart);
    }
    else document.querySelectorAll(".chart-note").forEach((n) => { n.textContent = "charts need plotly: pip install \"vtrack[ui]\""; });
  }
  if (page === "compare") initCompare();
});
