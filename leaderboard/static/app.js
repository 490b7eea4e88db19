// rftbench leaderboard: sorting, filters and plots over the table the template rendered.
// Plain JavaScript, no library, no network: the page works opened from disk.
(function () {
  "use strict";

  var SVGNS = "http://www.w3.org/2000/svg";
  var config = JSON.parse(document.getElementById("board-config").textContent);
  var table = document.getElementById("leaderboard");
  var tbody = table.tBodies[0];
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  var col = {};
  heads.forEach(function (th, i) { col[th.dataset.key] = i; });
  var COLORS = { convolutional: "#3b5bdb", attention: "#e8590c", hybrid: "#2b8a3e", unknown: "#868e96" };
  var SERIES = ["#495057", "#3b5bdb", "#1098ad", "#7048e8", "#e8590c", "#2b8a3e", "#c2255c", "#f08c00"];
  // one colour and one dash pattern per dataset's Pareto front (points keep the family colours)
  var FRONT_COLORS = ["#111111", "#c2255c", "#1098ad", "#f08c00", "#7048e8", "#5c940d", "#d9480f", "#364fc7", "#a61e4d", "#087f5b"];
  var FRONT_DASHES = ["", "6 3", "2 2", "8 3 2 3", "4 4", "1 3", "10 4"];

  function num(cell) {
    var v = cell.dataset.v;
    return v === "" || v === undefined ? null : Number(v);
  }

  var rows = Array.prototype.map.call(tbody.rows, function (tr) {
    var c = tr.cells;
    return {
      tr: tr,
      id: tr.dataset.id,
      representation: c[col.representation].dataset.v,
      dataset: tr.dataset.dataset,
      protocol: tr.dataset.protocol,
      loss: tr.dataset.loss,
      family: tr.dataset.family,
      pretraining: tr.dataset.pretraining,
      origin: tr.dataset.origin,
      pair: tr.dataset.pair,
      clean: num(c[col.clean]),
      threats: config.threats.map(function (_, i) { return num(c[col["threat-" + i]]); }),
      sum: num(c[col.sum]),
      flops: col.flops === undefined ? null : num(c[col.flops]),
      text: tr.textContent.toLowerCase(),
      visible: true
    };
  });

  // ------------------------------------------------------------------ filters

  var selects = Array.prototype.slice.call(document.querySelectorAll("select[data-filter]"));
  var search = document.getElementById("search");
  var shown = document.getElementById("shown");

  function readHash() {
    var params = new URLSearchParams(location.hash.slice(1));
    selects.forEach(function (s) {
      var v = params.get(s.dataset.filter);
      if (v !== null && Array.prototype.some.call(s.options, function (o) { return o.value === v; })) s.value = v;
    });
    if (params.get("q")) search.value = params.get("q");
  }

  function writeHash() {
    var params = new URLSearchParams();
    selects.forEach(function (s) { if (s.value) params.set(s.dataset.filter, s.value); });
    if (search.value) params.set("q", search.value);
    var text = params.toString();
    if (("#" + text) !== location.hash && !(text === "" && location.hash === "")) {
      history.replaceState(null, "", text ? "#" + text : location.pathname + location.search);
    }
  }

  function applyFilters() {
    var active = selects.filter(function (s) { return s.value; });
    var q = search.value.trim().toLowerCase();
    var count = 0;
    rows.forEach(function (r) {
      var ok = active.every(function (s) { return r[s.dataset.filter] === s.value; });
      if (ok && q) ok = r.text.indexOf(q) !== -1;
      r.visible = ok;
      r.tr.hidden = !ok;
      if (ok) count += 1;
    });
    shown.textContent = count + " shown";
    renumber();
    markTies();
    writeHash();
    schedulePlots();
  }

  function renumber() {
    var i = 0;
    Array.prototype.forEach.call(tbody.rows, function (tr) {
      if (!tr.hidden) { i += 1; tr.cells[col.rank].textContent = i; }
    });
  }

  selects.forEach(function (s) { s.addEventListener("change", applyFilters); });
  search.addEventListener("input", applyFilters);
  document.getElementById("reset").addEventListener("click", function () {
    selects.forEach(function (s) { s.value = ""; });
    search.value = "";
    applyFilters();
  });

  // ------------------------------------------------------------------ sorting

  function sortBy(th, direction) {
    var i = th.cellIndex;
    var numeric = th.dataset.type === "num";
    var sign = direction === "ascending" ? 1 : -1;
    var keyed = rows.map(function (r, k) {
      var v = r.tr.cells[i].dataset.v;
      return { r: r, k: k, v: numeric ? (v === "" ? null : Number(v)) : v };
    });
    keyed.sort(function (a, b) {
      if (a.v === null && b.v === null) return a.k - b.k;
      if (a.v === null) return 1; // missing values last, whatever the direction
      if (b.v === null) return -1;
      if (a.v < b.v) return -sign;
      if (a.v > b.v) return sign;
      return a.k - b.k;
    });
    var frag = document.createDocumentFragment();
    keyed.forEach(function (x) { frag.appendChild(x.r.tr); });
    tbody.appendChild(frag);
    rows = keyed.map(function (x) { return x.r; });
    heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", direction);
    renumber();
    var key = th.dataset.key;
    tieKey = (key === "clean" || key === "union" || key === "union_all" || key.indexOf("threat-") === 0) ? key : null;
    markTies();
  }

  // ------------------------------------------------------------------ best and ties on the sorted column

  // Same rule as rftbench.leaderboard.build.ties_with_best: within each dataset, a row ties with the
  // best when Newcombe's interval of (best - row), from the two Wilson intervals, reaches 0.
  var tieKey = null;
  var tieNote = document.getElementById("tie-note");
  var tieNoteDefault = tieNote ? tieNote.innerHTML : "";

  function cellNumber(cell, name) {
    var v = cell.dataset[name];
    return v === "" || v === undefined ? null : Number(v);
  }

  function markTies() {
    Array.prototype.forEach.call(tbody.querySelectorAll("td.best, td.tie"), function (td) { td.classList.remove("best", "tie"); });
    if (tieKey === null) { if (tieNote) tieNote.innerHTML = tieNoteDefault; return; }
    var i = col[tieKey];
    var best = {};
    var shownRows = rows.filter(function (r) { return r.visible; });
    shownRows.forEach(function (r) {
      var c = r.tr.cells[i], v = cellNumber(c, "v"), lo = cellNumber(c, "lo");
      if (v === null || lo === null) return;
      if (!(r.dataset in best) || v > best[r.dataset].v) best[r.dataset] = { v: v, lo: lo };
    });
    var ties = 0, bests = 0;
    shownRows.forEach(function (r) {
      var c = r.tr.cells[i], v = cellNumber(c, "v"), hi = cellNumber(c, "hi"), b = best[r.dataset];
      if (v === null || hi === null || !b) return;
      if (v === b.v) { c.classList.add("best"); bests += 1; return; }
      if ((b.v - v) - Math.sqrt((b.v - b.lo) * (b.v - b.lo) + (hi - v) * (hi - v)) <= 0) { c.classList.add("tie"); ties += 1; }
    });
    if (tieNote) {
      tieNote.textContent = heads[i].textContent.trim() + ": " + bests + " best of their dataset (bold) and " + ties +
        " statistically indistinguishable from it (≈: Newcombe 95% interval of the difference contains 0), among " +
        shownRows.length + " entries shown; accuracies in % with their Wilson 95% interval. The marks compare single " +
        "entries (one trained model each) on test-image sampling only, not seed-to-seed variation: they are not a " +
        "comparison of recipes.";
    }
  }

  heads.forEach(function (th) {
    if (th.dataset.key === "rank") return;
    th.addEventListener("click", function () {
      var current = th.getAttribute("aria-sort");
      var first = th.dataset.type === "num" ? "descending" : "ascending";
      var next = current ? (current === "ascending" ? "descending" : "ascending") : first;
      sortBy(th, next);
    });
  });

  // ------------------------------------------------------------------ svg helpers

  function el(name, attrs, parent, text) {
    var node = document.createElementNS(SVGNS, name);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  function clear(svg, w, h) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    svg.setAttribute("viewBox", "0 0 " + w + " " + h);
  }

  function yAxis(svg, m, w, h, label) {
    var g = el("g", { "class": "grid" }, svg);
    for (var t = 0; t <= 100; t += 20) {
      var y = m.t + (h - m.t - m.b) * (1 - t / 100);
      el("line", { x1: m.l, x2: w - m.r, y1: y, y2: y }, g);
      el("text", { x: m.l - 6, y: y + 4, "text-anchor": "end" }, svg, String(t));
    }
    el("text", { x: 12, y: m.t + (h - m.t - m.b) / 2, transform: "rotate(-90 12 " + (m.t + (h - m.t - m.b) / 2) + ")", "text-anchor": "middle" }, svg, label);
  }

  function empty(svg, w, h) {
    el("text", { x: w / 2, y: h / 2, "text-anchor": "middle", "class": "empty" }, svg, "no entry matches the filters");
  }

  // ------------------------------------------------------------------ clean vs robust, Pareto front

  function robustValue(r, axis) {
    if (axis === "mean") {
      var vals = r.threats.filter(function (v) { return v !== null; });
      if (vals.length !== r.threats.length || !vals.length) return null;
      return vals.reduce(function (a, b) { return a + b; }, 0) / vals.length;
    }
    return r.threats[Number(axis)];
  }

  // Same rule as rftbench.leaderboard.build.pareto_front: not dominated in both coordinates.
  function paretoFront(points) {
    var sorted = points.slice().sort(function (a, b) { return b.x - a.x || b.y - a.y; });
    var front = [];
    var best = -Infinity;
    sorted.forEach(function (p) { if (p.y > best) { front.push(p); best = p.y; } });
    return front.sort(function (a, b) { return a.x - b.x; });
  }

  function drawPareto() {
    var svg = document.querySelector("#plot-pareto svg");
    var axisSel = document.getElementById("robust-axis");
    var axis = axisSel.value;
    var w = 560, h = 380, m = { l: 44, r: 12, t: 12, b: 40 };
    clear(svg, w, h);
    var pts = [];
    rows.forEach(function (r) {
      if (!r.visible || r.clean === null) return;
      var y = robustValue(r, axis);
      if (y === null) return;
      pts.push({ x: r.clean, y: y, r: r });
    });
    var title = axisSel.options[axisSel.selectedIndex].text;
    yAxis(svg, m, w, h, "robust accuracy (" + title + ", %)");
    var gx = el("g", { "class": "grid" }, svg);
    for (var t = 0; t <= 100; t += 20) {
      var xx = m.l + (w - m.l - m.r) * t / 100;
      el("line", { x1: xx, x2: xx, y1: m.t, y2: h - m.b }, gx);
      el("text", { x: xx, y: h - m.b + 16, "text-anchor": "middle" }, svg, String(t));
    }
    el("text", { x: m.l + (w - m.l - m.r) / 2, y: h - 6, "text-anchor": "middle" }, svg, "clean accuracy (%)");
    svg.dataset.points = pts.length;
    if (!pts.length) { svg.dataset.front = 0; empty(svg, w, h); document.getElementById("pareto-note").textContent = ""; return; }
    function px(v) { return m.l + (w - m.l - m.r) * v; }
    function py(v) { return m.t + (h - m.t - m.b) * (1 - v); }
    // one front per dataset: accuracies on different datasets are not comparable
    var byDataset = {};
    pts.forEach(function (p) { (byDataset[p.r.dataset] || (byDataset[p.r.dataset] = [])).push(p); });
    var fronts = Object.keys(byDataset).sort().map(function (d) { return paretoFront(byDataset[d]); });
    var front = [].concat.apply([], fronts);
    var onFront = new Set(front.map(function (p) { return p.r.id; }));
    var g = el("g", { "class": "points" }, svg);
    pts.forEach(function (p) {
      var c = el("circle", { cx: px(p.x).toFixed(1), cy: py(p.y).toFixed(1), r: onFront.has(p.r.id) ? 3.6 : 2.4,
        fill: COLORS[p.r.family] || COLORS.unknown, "class": "point" + (onFront.has(p.r.id) ? " on-front" : ""), "data-id": p.r.id }, g);
      el("title", {}, c, p.r.representation + " · " + p.r.dataset + " · " + p.r.protocol + " · " + p.r.loss +
        "\nclean " + (100 * p.x).toFixed(1) + "%, robust " + (100 * p.y).toFixed(1) + "%");
    });
    // staircase through the front (x up, y down): from each point down to the next one's height, then right
    var legendTop = h - m.b - 8 - 14 * fronts.length, legendRows = [];
    fronts.forEach(function (f, k) {
      var d = "";
      f.forEach(function (p, i) {
        if (i === 0) d = "M" + px(p.x).toFixed(1) + " " + py(p.y).toFixed(1);
        else d += " V" + py(p.y).toFixed(1) + " H" + px(p.x).toFixed(1);
      });
      var color = FRONT_COLORS[k % FRONT_COLORS.length], dash = FRONT_DASHES[k % FRONT_DASHES.length];
      var style = "stroke:" + color + (dash ? ";stroke-dasharray:" + dash : ";stroke-dasharray:none");
      var name = f[0].r.dataset;
      var path = el("path", { d: d, "class": "front", style: style, "data-dataset": name, "data-color": color }, svg);
      el("title", {}, path, "Pareto front of " + name + " (" + f.length + " entries)");
      legendRows.push({ name: name, style: style });
    });
    // the legend names each front (lower right, one line per dataset), over the points on a pale box
    var frontLegend = el("g", { "class": "front-legend" }, svg);
    el("rect", { x: w - m.r - 158, y: legendTop - 10, width: 156, height: 14 * fronts.length + 6, fill: "#ffffff",
      "fill-opacity": 0.88, stroke: "#dde1e8" }, frontLegend);
    legendRows.forEach(function (row, k) {
      var ly = legendTop + 14 * k;
      el("line", { x1: w - m.r - 152, x2: w - m.r - 128, y1: ly, y2: ly, "class": "front", style: row.style }, frontLegend);
      el("text", { x: w - m.r - 122, y: ly + 4, "data-dataset": row.name }, frontLegend,
        row.name.length > 22 ? row.name.slice(0, 21) + "…" : row.name);
    });
    svg.dataset.front = front.length;
    svg.dataset.fronts = fronts.length;
    var legend = el("g", {}, svg);
    Object.keys(COLORS).forEach(function (name, i) {
      el("circle", { cx: m.l + 12, cy: m.t + 10 + i * 14, r: 4, fill: COLORS[name] }, legend);
      el("text", { x: m.l + 20, y: m.t + 14 + i * 14 }, legend, name);
    });
    var best = front.slice().sort(function (a, b) { return b.y - a.y; }).slice(0, 3).map(function (p) {
      return p.r.representation + " (" + p.r.dataset + ", " + p.r.protocol + ", " + p.r.loss + ")";
    });
    document.getElementById("pareto-note").textContent = pts.length + " entries, " + front.length +
      " on the Pareto fronts of " + fronts.length + (fronts.length === 1 ? " dataset" : " datasets (one front each)") +
      "; most robust on them: " + best.join("; ") + ".";
  }

  // ------------------------------------------------------------------ robust accuracy vs cost

  // Pareto front for (lower cost, higher robust accuracy): sorted by cost, kept when more robust than all cheaper.
  function costFront(points) {
    var sorted = points.slice().sort(function (a, b) { return a.x - b.x || b.y - a.y; });
    var front = [];
    var best = -Infinity;
    sorted.forEach(function (p) { if (p.y > best) { front.push(p); best = p.y; } });
    return front;
  }

  function drawCost() {
    var svg = document.querySelector("#plot-cost svg");
    if (!svg) return;
    var axis = document.getElementById("robust-axis").value;
    var w = 560, h = 380, m = { l: 44, r: 12, t: 12, b: 40 };
    clear(svg, w, h);
    var pts = [], unknown = 0;
    rows.forEach(function (r) {
      if (!r.visible) return;
      var y = robustValue(r, axis);
      if (y === null) return;
      if (r.flops === null || !(r.flops > 0)) { unknown += 1; return; }  // no cost recorded: unknown, not drawn at 0
      pts.push({ x: Math.log10(r.flops), y: y, r: r });
    });
    yAxis(svg, m, w, h, "robust accuracy (%)");
    var note = document.getElementById("cost-note");
    svg.dataset.points = pts.length;
    svg.dataset.unknown = unknown;
    if (!pts.length) {
      svg.dataset.front = 0; empty(svg, w, h);
      note.textContent = unknown ? unknown + " entries have no recorded cost (unknown), so none is drawn." : "";
      return;
    }
    var lo = Math.floor(Math.min.apply(null, pts.map(function (p) { return p.x; })));
    var hi = Math.ceil(Math.max.apply(null, pts.map(function (p) { return p.x; })));
    if (hi === lo) hi = lo + 1;
    function px(v) { return m.l + (w - m.l - m.r) * (v - lo) / (hi - lo); }
    function py(v) { return m.t + (h - m.t - m.b) * (1 - v); }
    for (var t = lo; t <= hi; t += 1) {
      el("text", { x: px(t), y: h - m.b + 16, "text-anchor": "middle" }, svg, "1e" + t);
    }
    el("text", { x: m.l + (w - m.l - m.r) / 2, y: h - 6, "text-anchor": "middle" }, svg, "FLOPs (log scale)");
    var byDataset = {};
    pts.forEach(function (p) { (byDataset[p.r.dataset] || (byDataset[p.r.dataset] = [])).push(p); });
    var fronts = Object.keys(byDataset).sort().map(function (d) { return costFront(byDataset[d]); });
    var onFront = new Set([].concat.apply([], fronts).map(function (p) { return p.r.id; }));
    var g = el("g", { "class": "points" }, svg);
    pts.forEach(function (p) {
      var c = el("circle", { cx: px(p.x).toFixed(1), cy: py(p.y).toFixed(1), r: onFront.has(p.r.id) ? 3.6 : 2.4,
        fill: COLORS[p.r.family] || COLORS.unknown, "class": "point" + (onFront.has(p.r.id) ? " on-front" : ""), "data-id": p.r.id }, g);
      el("title", {}, c, p.r.representation + " · " + p.r.dataset + " · " + p.r.loss + "\n" +
        Math.pow(10, p.x).toExponential(2) + " FLOPs, robust " + (100 * p.y).toFixed(1) + "%");
    });
    fronts.forEach(function (f) {
      var d = "";
      // staircase: from each point right to the next one's cost, then up to its accuracy
      f.forEach(function (p, i) {
        if (i === 0) d = "M" + px(p.x).toFixed(1) + " " + py(p.y).toFixed(1);
        else d += " H" + px(p.x).toFixed(1) + " V" + py(p.y).toFixed(1);
      });
      el("path", { d: d, "class": "front", "data-dataset": f[0].r.dataset }, svg);
    });
    svg.dataset.front = onFront.size;
    note.textContent = pts.length + " entries with a recorded cost, " + onFront.size + " on the cost fronts" +
      (unknown ? "; " + unknown + " without one (unknown cost) are not drawn." : ".");
  }

  // ------------------------------------------------------------------ per-group bars

  function groupMeans(key) {
    var groups = {};
    rows.forEach(function (r) {
      if (!r.visible) return;
      var g = groups[r[key]] || (groups[r[key]] = { n: 0, sums: [], counts: [] });
      g.n += 1;
      [r.clean].concat(r.threats).forEach(function (v, i) {
        if (v === null) return;
        g.sums[i] = (g.sums[i] || 0) + v;
        g.counts[i] = (g.counts[i] || 0) + 1;
      });
    });
    return Object.keys(groups).sort().map(function (name) {
      var g = groups[name];
      return { name: name, n: g.n, means: g.sums.map(function (s, i) { return g.counts[i] ? s / g.counts[i] : null; }) };
    });
  }

  function drawBars(selector, key) {
    var svg = document.querySelector(selector + " svg");
    var groups = groupMeans(key);
    var series = ["clean"].concat(config.threats.map(function (t) { return t.title; }));
    var w = 560, h = 380, m = { l: 44, r: 12, t: 28, b: 44 };
    clear(svg, w, h);
    yAxis(svg, m, w, h, "mean accuracy (%)");
    svg.dataset.groups = groups.length;
    if (!groups.length) { empty(svg, w, h); return; }
    var gw = (w - m.l - m.r) / groups.length;
    var bw = Math.max(2, Math.min(22, (gw * 0.8) / series.length));
    var bars = el("g", {}, svg);
    groups.forEach(function (g, gi) {
      var x0 = m.l + gi * gw + (gw - bw * series.length) / 2;
      g.means.forEach(function (v, si) {
        if (v === null || v === undefined) return;
        var y = m.t + (h - m.t - m.b) * (1 - v);
        var rect = el("rect", { x: (x0 + si * bw).toFixed(1), y: y.toFixed(1), width: (bw - 1).toFixed(1),
          height: (h - m.b - y).toFixed(1), fill: SERIES[si % SERIES.length], "class": "bar" }, bars);
        el("title", {}, rect, g.name + " · " + series[si] + ": " + (100 * v).toFixed(1) + "% (mean of " + g.n + ")");
      });
      el("text", { x: m.l + gi * gw + gw / 2, y: h - m.b + 16, "text-anchor": "middle" }, svg, g.name);
      el("text", { x: m.l + gi * gw + gw / 2, y: h - m.b + 30, "text-anchor": "middle" }, svg, "n=" + g.n);
    });
    var legend = el("g", {}, svg);
    var lx = m.l;
    series.forEach(function (s, si) {
      el("rect", { x: lx, y: 6, width: 10, height: 10, fill: SERIES[si % SERIES.length] }, legend);
      el("text", { x: lx + 13, y: 15 }, legend, s);
      lx += 18 + 6.5 * s.length;
    });
  }

  // Share of matched pairs (same representation, dataset and protocol) where one loss beats another on sum.
  function lossNote() {
    var byPair = {};
    rows.forEach(function (r) {
      if (!r.visible || r.sum === null) return;
      (byPair[r.pair] || (byPair[r.pair] = {}))[r.loss] = r.sum;
    });
    var wins = {}, totals = {};
    Object.keys(byPair).forEach(function (k) {
      var losses = Object.keys(byPair[k]).sort();
      for (var i = 0; i < losses.length; i++) {
        for (var j = i + 1; j < losses.length; j++) {
          var key = losses[i] + "|" + losses[j];
          totals[key] = (totals[key] || 0) + 1;
          if (byPair[k][losses[i]] > byPair[k][losses[j]]) wins[key] = (wins[key] || 0) + 1;
        }
      }
    });
    var parts = Object.keys(totals).sort().map(function (key) {
      var ab = key.split("|"), share = (wins[key] || 0) / totals[key];
      var lead = share >= 0.5 ? ab[0] : ab[1], pct = share >= 0.5 ? share : 1 - share;
      var other = lead === ab[0] ? ab[1] : ab[0];
      return lead + " beats " + other + " on sum in " + Math.round(100 * pct) + "% of " + totals[key] + " matched pairs";
    });
    document.getElementById("loss-note").textContent = parts.length ? parts.join("; ") + " (same representation, dataset and protocol)." : "";
  }

  // ------------------------------------------------------------------ wiring

  var pending = false;
  function drawPlots() {
    pending = false;
    drawPareto();
    drawCost();
    drawBars("#plot-protocol", "protocol");
    drawBars("#plot-loss", "loss");
    lossNote();
    document.body.dataset.ready = "1";
  }
  function schedulePlots() {
    if (pending) return;
    pending = true;
    (window.requestAnimationFrame || setTimeout)(drawPlots);
  }
  document.getElementById("robust-axis").addEventListener("change", function () { drawPareto(); drawCost(); });

  // a table wider than its box says so, above it: the identity columns stay (sticky), the rest scrolls
  var board = document.getElementById("board"), hint = document.getElementById("scroll-hint");
  function scrollHint() {
    if (!board || !hint) return;
    // what is scrolled into view (a header clicked, a found row) lands beside the sticky columns, not under them
    var sticky = board.querySelector("thead th:nth-child(2)");
    if (sticky) board.style.scrollPaddingLeft = Math.ceil(sticky.getBoundingClientRect().right - board.getBoundingClientRect().left) + "px";
    var more = board.scrollWidth - board.clientWidth > 1;
    var atEnd = board.scrollLeft + board.clientWidth >= board.scrollWidth - 1;
    hint.hidden = !more;
    hint.textContent = atEnd ? "← scroll back for the first columns" : "more columns to the right → scroll the table sideways (shift + wheel)";
    board.classList.toggle("more-right", more && !atEnd);
  }
  if (board) board.addEventListener("scroll", scrollHint);
  window.addEventListener("resize", scrollHint);

  readHash();
  applyFilters();
  drawPlots();
  scrollHint();
})();
