// attnscope serve: the attention browser's front end. Plain JavaScript, no
// library; every request goes to the server that sent this file.
"use strict";

const VIEWS = [
  ["head", "Head"], ["model", "Model"], ["neuron", "Neuron"], ["matrix", "Matrix"],
  ["code", "Source"], ["derived", "Derived"], ["metrics", "Metrics"], ["compare", "Compare"],
];
const HEAD_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const CLIPS = [100, 99.9, 99.5, 99, 95, 90];
const MAX_HEAD_TOKENS = 512;

const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(e.dataset, v);
    else if (k === "style") e.style.cssText = v; // CSSOM: allowed by the CSP, unlike style attributes
    else e.setAttribute(k, v);
  }
  for (const c of kids) if (c != null) e.append(c);
  return e;
};
const $ = (s) => document.querySelector(s);
const enc = encodeURIComponent;

// ---- state in the URL: #run=R&sample=S&view=V&layer=L&head=H&... ----
let state = {};
// intervened names the intervention a run's forward passes applied (run.json "intervention").
function intervened(meta) {
  const iv = meta && meta.intervention;
  return iv ? ` · intervened: ${iv.name || iv.file}` : "";
}

function parseHash() {
  const out = {};
  for (const [k, v] of new URLSearchParams(location.hash.slice(1))) out[k] = v;
  return out;
}
function hashOf(s) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(s)) if (v !== undefined && v !== null && v !== "") p.set(k, v);
  return "#" + p.toString();
}
function go(patch, keep = true) {
  const s = keep ? { ...state, ...patch } : patch;
  location.hash = hashOf(s);
}
function replaceState(patch) {
  Object.assign(state, patch);
  history.replaceState(null, "", hashOf(state));
}
const int = (v, d) => { const n = parseInt(v, 10); return Number.isFinite(n) ? n : d; };

// ---- fetching ----
const jsonCache = new Map();
async function api(path) {
  if (jsonCache.has(path)) return jsonCache.get(path);
  const p = fetch(path).then(async (r) => {
    if (!r.ok) {
      let msg = r.status + " " + r.statusText;
      try { msg = (await r.json()).error || msg; } catch (_) { /* not JSON */ }
      throw new Error(msg);
    }
    return r.json();
  });
  jsonCache.set(path, p);
  p.catch(() => jsonCache.delete(path));
  return p;
}
const binCache = new Map();
function floats(path) {
  if (binCache.has(path)) return binCache.get(path);
  const p = fetch(path).then(async (r) => {
    if (!r.ok) {
      let msg = r.status + "";
      try { msg = (await r.json()).error || msg; } catch (_) { /* not JSON */ }
      throw new Error(msg);
    }
    const shape = (r.headers.get("X-Shape") || "").split(",").map(Number);
    return { shape, data: new Float32Array(await r.arrayBuffer()) };
  });
  binCache.set(path, p);
  if (binCache.size > 600) binCache.delete(binCache.keys().next().value);
  p.catch(() => binCache.delete(path));
  return p;
}
const runURL = () => "/api/runs/" + enc(state.run);
const sampleURL = (run = state.run, sample = state.sample) => "/api/runs/" + enc(run) + "/samples/" + enc(sample);

// ---- colours ----
// Viridis (matplotlib's default map, van der Walt & Smith), 9 stops interpolated.
const VIRIDIS = [[68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142], [31, 158, 137], [53, 183, 121], [109, 205, 89], [180, 222, 44], [253, 231, 37]];
const LUT = (() => {
  const t = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const x = i / 255 * (VIRIDIS.length - 1), a = Math.floor(x), b = Math.min(a + 1, VIRIDIS.length - 1), f = x - a;
    for (let c = 0; c < 3; c++) t[i * 3 + c] = VIRIDIS[a][c] + (VIRIDIS[b][c] - VIRIDIS[a][c]) * f;
  }
  return t;
})();
function colourise(data, w, h, lo, hi) {
  const img = new ImageData(w, h), px = img.data, span = hi > lo ? hi - lo : 1;
  for (let i = 0; i < w * h; i++) {
    let v = (data[i] - lo) / span;
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    const k = Math.round(v * 255) * 3;
    px[4 * i] = LUT[k]; px[4 * i + 1] = LUT[k + 1]; px[4 * i + 2] = LUT[k + 2]; px[4 * i + 3] = 255;
  }
  return img;
}
const cssColour = (v) => { const k = Math.round(Math.max(0, Math.min(1, v)) * 255) * 3; return `rgb(${LUT[k]},${LUT[k + 1]},${LUT[k + 2]})`; };
// Diverging blue-white-red for signed vectors.
function diverging(v) {
  v = Math.max(-1, Math.min(1, v));
  const a = Math.abs(v), w = 255 - Math.round(a * 200);
  return v >= 0 ? [255, w, w - (w > 55 ? 20 : 0)] : [w - (w > 55 ? 20 : 0), w, 255];
}
// Heat for text backgrounds: white to orange-red.
const heat = (v) => { v = Math.max(0, Math.min(1, v)); return `rgba(230, 85, 13, ${(v * 0.85).toFixed(3)})`; };

// ---- tooltip ----
const tip = (text, ev) => {
  const t = $("#tip");
  if (!text) { t.hidden = true; return; }
  t.textContent = text; t.hidden = false;
  t.style.left = (ev.clientX + 14) + "px"; t.style.top = (ev.clientY + 12) + "px";
};

// ---- page frame ----
let renderSeq = 0;
let cur = { run: null, sample: null };
let viewCleanup = null;

async function render() {
  state = parseHash();
  const seq = ++renderSeq;
  if (viewCleanup) { viewCleanup(); viewCleanup = null; }
  const main = $("#main"), tabs = $("#tabs"), controls = $("#controls");
  tabs.replaceChildren(); controls.replaceChildren(); main.replaceChildren();
  document.body.dataset.painted = "";
  document.body.dataset.view = state.view || "";
  crumbs();
  try {
    const runs = await api("/api/runs");
    if (seq !== renderSeq) return;
    if (!state.run) return runsPage(main, runs);
    const run = runs.find((r) => r.key === state.run);
    if (!run) throw new Error("no run " + state.run + " is served");
    cur.run = run;
    if (!state.sample) return runPage(main, run, seq);
    const sample = await api(sampleURL());
    if (seq !== renderSeq) return;
    cur.sample = sample;
    const view = state.view || (sample.n <= 128 ? "head" : "matrix");
    state.view = view;
    document.body.dataset.view = view;
    for (const [k, name] of VIEWS) {
      tabs.append(el("a", { href: hashOf({ ...state, view: k }), class: k === view ? "on" : "", id: "tab-" + k, text: name }));
    }
    const fn = { head: headView, model: modelView, neuron: neuronView, matrix: matrixView, code: codeView, derived: derivedView, metrics: metricsView, compare: compareView }[view];
    if (!fn) throw new Error("unknown view " + view);
    await fn(main, controls, sample, seq);
  } catch (e) {
    if (seq !== renderSeq) return;
    main.replaceChildren(el("div", { class: "error", id: "error", text: e.message }));
    document.body.dataset.painted = "1";
  }
}

function crumbs() {
  const c = $("#crumbs");
  c.replaceChildren();
  if (state.run) c.append(el("span", { class: "sep", text: "/" }), el("a", { href: hashOf({ run: state.run }), text: state.run }));
  if (state.sample) c.append(el("span", { class: "sep", text: "/" }), el("a", { href: hashOf({ run: state.run, sample: state.sample }), text: state.sample }));
}

function runsPage(main, runs) {
  main.append(el("h2", { text: "Runs" }));
  const cards = el("div", { class: "cards", id: "runs" });
  for (const r of runs) {
    cards.append(el("div", { class: "card" },
      el("h3", {}, el("a", { href: hashOf({ run: r.key }), class: "run-link", text: r.key })),
      el("div", { class: "note", text: `${r.kind || "run"} · ${r.model || "no model recorded"} · ${r.dtype}${intervened(r.meta)}` }),
      el("div", { text: `${r.samples.length} samples · ${r.derived.length} derived passes · ${r.run_outputs.length} run outputs${r.metrics ? " · metrics" : ""}` })));
  }
  main.append(cards);
  document.body.dataset.painted = "1";
}

async function runPage(main, run, seq) {
  main.append(el("h2", { text: "Run " + run.key }));
  const m = run.meta;
  main.append(el("div", { class: "note", text: `${run.kind} run · ${run.model || ""} · stored as ${run.dtype} · ${m.attention_implementation || ""}${intervened(m)}` }));
  const t = el("table", { class: "grid", id: "samples" }, el("tr", {}, el("th", { text: "sample" }), el("th", { text: "views" })));
  for (const id of run.samples) {
    const links = el("td", {});
    for (const [k, name] of VIEWS.slice(0, 5)) links.append(el("a", { href: hashOf({ run: run.key, sample: id, view: k }), text: name }), " ");
    t.append(el("tr", {}, el("td", {}, el("a", { href: hashOf({ run: run.key, sample: id }), class: "sample-link", text: id })), links));
  }
  main.append(t);
  if (run.metrics && run.samples.length) {
    main.append(el("h2", { text: "Metrics" }));
    await metricsTable(main, run, seq);
  }
  if (run.run_outputs.length || run.run_outputs_error) await runOutputsSection(main, run, seq);
  document.body.dataset.painted = "1";
}

// layerHeadControls adds layer and head steppers; onHeads adds the head choice.
function layerHeadControls(controls, sample, opts = {}) {
  const layer = Math.min(int(state.layer, 0), sample.layers - 1), head = Math.min(int(state.head, 0), sample.heads - 1);
  state.layer = layer; state.head = head;
  const stepper = (name, val, n, key) => el("label", {}, name,
    el("button", { class: "step", id: key + "-prev", title: "previous " + name, onclick: () => go({ [key]: (val + n - 1) % n }) }, "‹"),
    (() => {
      const s = el("select", { id: key + "-select", onchange: (e) => go({ [key]: e.target.value }) });
      for (let i = 0; i < n; i++) s.append(el("option", { value: i, text: i }));
      s.value = val;
      return s;
    })(),
    el("button", { class: "step", id: key + "-next", title: "next " + name, onclick: () => go({ [key]: (val + 1) % n }) }, "›"),
    el("span", { class: "note", text: "of " + n }));
  controls.append(stepper("layer", layer, sample.layers, "layer"));
  if (!opts.noHead) controls.append(stepper("head", head, sample.heads, "head"));
  return { layer, head };
}

// ---- keyboard ----
document.addEventListener("keydown", (ev) => {
  if (ev.target.closest && ev.target.closest("input, select, textarea")) return;
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const s = cur.sample;
  if (!state.sample || !s) return;
  const step = (k, n, d) => go({ [k]: (int(state[k], 0) + d + n) % n });
  switch (ev.key) {
    case "]": case "ArrowDown": step("layer", s.layers, 1); break;
    case "[": case "ArrowUp": step("layer", s.layers, -1); break;
    case ".": case "ArrowRight": step("head", s.heads, 1); break;
    case ",": case "ArrowLeft": step("head", s.heads, -1); break;
    default:
      if (ev.key >= "1" && ev.key <= String(VIEWS.length)) { go({ view: VIEWS[+ev.key - 1][0] }); break; }
      return;
  }
  ev.preventDefault();
});

// ---- head view (after BertViz's head view) ----
async function headView(main, controls, sample, seq) {
  const { layer } = layerHeadControls(controls, sample, { noHead: true });
  const n = sample.n;
  if (n > MAX_HEAD_TOKENS) {
    main.append(el("div", { class: "note", id: "toolong", text: `This sample has ${n} tokens; the head view draws at most ${MAX_HEAD_TOKENS}. The matrix view shows any length.` }));
    document.body.dataset.painted = "1";
    return;
  }
  let heads = (state.heads || String(int(state.head, 0))).split(",").map(Number).filter((h) => h >= 0 && h < sample.heads);
  if (state.heads === "all") heads = [...Array(sample.heads).keys()];
  const sw = el("div", { class: "swatches", id: "swatches" });
  for (let h = 0; h < sample.heads; h++) {
    sw.append(el("div", {
      class: "swatch" + (heads.includes(h) ? " on" : ""), title: "head " + h, text: h, dataset: { head: h },
      style: "background:" + HEAD_COLOURS[h % HEAD_COLOURS.length],
      onclick: () => {
        const hs = heads.includes(h) ? heads.filter((x) => x !== h) : [...heads, h].sort((a, b) => a - b);
        go({ heads: hs.join(","), head: hs.length ? hs[0] : state.head });
      },
    }));
  }
  controls.append(el("label", {}, "heads", sw), el("button", { id: "heads-all", onclick: () => go({ heads: "all" }) }, "all"));
  const { data } = await floats(`${sampleURL()}/layer/${layer}`);
  if (seq !== renderSeq) return;
  const rowH = 18, width = 260;
  const wrap = el("div", { id: "headview" });
  const left = el("div", { class: "col left" }), right = el("div", { class: "col right" });
  const canvas = el("canvas", { width: width * devicePixelRatio, height: n * rowH * devicePixelRatio, style: `width:${width}px;height:${n * rowH}px` });
  let sepSeen = false;
  for (let i = 0; i < n; i++) {
    const lab = sample.labels[i];
    let cls = "tok";
    if (sample.generated && i >= sample.prompt_length) cls += " gen";
    const raw = sample.tokens[i] || "";
    if (/^\[(CLS|SEP|PAD)\]$|^<\|.*\|>$|^<\/?s>$/.test(raw)) cls += " special";
    else if (sepSeen) cls += " segb";
    if (raw === "[SEP]") sepSeen = true;
    left.append(el("div", { class: cls, text: lab, dataset: { i, side: "q" } }));
    right.append(el("div", { class: cls, text: lab, dataset: { i, side: "k" } }));
  }
  wrap.append(left, canvas, right);
  main.append(el("div", { class: "note", text: `Layer ${layer}: lines join each query token (left) to the key tokens (right) it attends to, one colour per head, opacity = weight. Hover a token to isolate its row or column.${sample.generated ? " Generated tokens are in italics." : ""}` }), wrap);
  const ctx = canvas.getContext("2d");
  ctx.scale(devicePixelRatio, devicePixelRatio);
  const draw = (only) => {
    ctx.clearRect(0, 0, width, n * rowH);
    ctx.lineWidth = 2;
    for (const h of heads) {
      ctx.strokeStyle = HEAD_COLOURS[h % HEAD_COLOURS.length];
      const base = h * n * n;
      for (let q = 0; q < n; q++) {
        if (only && only.side === "q" && only.i !== q) continue;
        for (let k = 0; k < n; k++) {
          if (only && only.side === "k" && only.i !== k) continue;
          const w = data[base + q * n + k];
          if (w < 0.02) continue;
          ctx.globalAlpha = Math.min(1, w) * (heads.length > 1 ? 0.7 : 1);
          ctx.beginPath();
          ctx.moveTo(0, q * rowH + rowH / 2);
          ctx.lineTo(width, k * rowH + rowH / 2);
          ctx.stroke();
        }
      }
    }
    ctx.globalAlpha = 1;
  };
  draw(null);
  const over = (ev) => {
    const t = ev.target.closest(".tok");
    wrap.querySelectorAll(".tok.hl").forEach((x) => x.classList.remove("hl"));
    if (!t) { draw(null); wrap.dataset.hover = ""; tip(null); return; }
    const i = +t.dataset.i, side = t.dataset.side;
    t.classList.add("hl");
    wrap.dataset.hover = side + i;
    draw({ side, i });
    if (heads.length) {
      const h = heads[0], other = side === "q" ? "attends to" : "receives from";
      let best = -1, bw = -1;
      for (let j = 0; j < n; j++) {
        const w = side === "q" ? data[h * n * n + i * n + j] : data[h * n * n + j * n + i];
        if (w > bw) { bw = w; best = j; }
      }
      tip(`${sample.labels[i]} (${i}) ${other} ${sample.labels[best]} (${best}) most: ${bw.toFixed(3)} in head ${h}`, ev);
    }
  };
  wrap.addEventListener("mouseover", over);
  wrap.addEventListener("mouseleave", () => { draw(null); tip(null); wrap.dataset.hover = ""; });
  document.body.dataset.painted = "1";
}

// ---- model view ----
async function modelView(main, controls, sample, seq) {
  const pool = state.pool === "mean" ? "mean" : "max";
  controls.append(poolSelect(pool));
  main.append(el("div", { class: "note", text: `Every layer (rows) × head (columns), each drawn from the top level of its ${pool}-pooled tile pyramid. Click one to open it in the matrix view.` }));
  const grid = el("div", { id: "modelview", style: `grid-template-columns: 56px repeat(${sample.heads}, 68px)` });
  grid.append(el("div", {}));
  for (let h = 0; h < sample.heads; h++) grid.append(el("div", { class: "lab", text: "head " + h }));
  const cells = [];
  for (let l = 0; l < sample.layers; l++) {
    grid.append(el("div", { class: "lab", text: "layer " + l }));
    for (let h = 0; h < sample.heads; h++) {
      const c = el("canvas", {
        width: 1, height: 1, title: `layer ${l}, head ${h}`, dataset: { layer: l, head: h },
        class: l === int(state.layer, 0) && h === int(state.head, 0) ? "cur" : "",
        onclick: () => go({ view: "matrix", layer: l, head: h, zoom: "", cx: "", cy: "" }),
      });
      grid.append(c);
      cells.push(c);
    }
  }
  main.append(grid);
  const jobs = [];
  for (let l = 0; l < sample.layers; l++) {
    jobs.push(floats(`${sampleURL()}/thumbs/${l}/${pool}`).then(({ shape, data }) => {
      if (seq !== renderSeq) return;
      const [H, d] = shape;
      for (let h = 0; h < H; h++) {
        const slice = data.subarray(h * d * d, (h + 1) * d * d);
        let hi = 0;
        for (const v of slice) if (v > hi) hi = v;
        const c = cells[l * sample.heads + h];
        c.width = d; c.height = d;
        c.getContext("2d").putImageData(colourise(slice, d, d, 0, hi), 0, 0);
      }
    }));
  }
  await Promise.all(jobs);
  if (seq === renderSeq) document.body.dataset.painted = "1";
}

function poolSelect(pool) {
  const s = el("select", { id: "pool", onchange: (e) => go({ pool: e.target.value }) }, el("option", { value: "max", text: "max" }), el("option", { value: "mean", text: "mean" }));
  s.value = pool;
  return el("label", { title: "how a pooled cell summarises the cells under it" }, "pooling", s);
}

// ---- neuron view ----
function vectorCanvas(v, scale) {
  const c = el("canvas", { width: v.length, height: 1, style: `width:${Math.min(384, v.length * 6)}px` });
  const img = new ImageData(v.length, 1);
  for (let i = 0; i < v.length; i++) {
    const [r, g, b] = diverging(v[i] / scale);
    img.data.set([r, g, b, 255], 4 * i);
  }
  c.getContext("2d").putImageData(img, 0, 0);
  return c;
}

async function neuronView(main, controls, sample, seq) {
  const { layer, head } = layerHeadControls(controls, sample);
  if (!sample.has_qkv) {
    main.append(el("div", { class: "note", id: "noqkv", text: "Queries and keys were not captured for this sample: capture with --qkv to see the neuron view (the sample has no qkv.safetensors)." }));
    document.body.dataset.painted = "1";
    return;
  }
  const q = Math.min(int(state.q, sample.n - 1), sample.n - 1);
  const qs = el("select", { id: "query", onchange: (e) => go({ q: e.target.value }) });
  for (let i = 0; i < sample.n; i++) qs.append(el("option", { value: i, text: `${i} ${sample.labels[i]}` }));
  qs.value = q;
  controls.append(el("label", {}, "query token", qs));
  const d = await api(`${sampleURL()}/neuron/${layer}/${head}/${q}`);
  if (seq !== renderSeq) return;
  let scale = 1e-9;
  for (const v of d.q) scale = Math.max(scale, Math.abs(v));
  for (const k of d.k) for (const v of k) scale = Math.max(scale, Math.abs(v));
  main.append(el("div", { class: "note", text: `Query ${q} “${sample.labels[q]}”, layer ${layer}, head ${head}: score = q·k / √${d.dim}; softmax over the keys it may see${d.causal ? " (causal: keys ≤ query)" : ""}; the stored weight is what capture recorded. Vectors: blue negative, red positive (|max| = ${scale.toPrecision(3)}).` }));
  let maxW = 0;
  for (const j of d.keys) maxW = Math.max(maxW, d.softmax[j]);
  const t = el("table", { class: "grid", id: "neuron" },
    el("tr", {}, ...["key", "token", "k", "q ∘ k", "score", "softmax", "stored"].map((x) => el("th", { text: x }))));
  t.append(el("tr", { class: "q" }, el("td", { text: "q" }), el("td", { text: sample.labels[q] }), el("td", { class: "vec" }, vectorCanvas(d.q, scale)), el("td", {}), el("td", {}), el("td", {}), el("td", {})));
  d.keys.forEach((j, idx) => {
    const k = d.k[idx], prod = k.map((v, i) => v * d.q[i]);
    let ps = 1e-9;
    for (const v of prod) ps = Math.max(ps, Math.abs(v));
    t.append(el("tr", { dataset: { key: j, score: d.score[j], softmax: d.softmax[j], stored: d.stored[j] } },
      el("td", { class: "num", text: j }), el("td", { text: sample.labels[j] }),
      el("td", { class: "vec" }, vectorCanvas(k, scale)), el("td", { class: "vec" }, vectorCanvas(prod, ps)),
      el("td", { class: "num", text: d.score[j].toFixed(3) }),
      el("td", { class: "num" }, el("span", { class: "bar", style: `width:${Math.round(60 * d.softmax[j] / (maxW || 1))}px` }), " " + d.softmax[j].toFixed(4)),
      el("td", { class: "num", text: d.stored[j].toFixed(4) })));
  });
  main.append(t);
  document.body.dataset.painted = "1";
}

// ---- matrix view: tiles of the pooled pyramid ----
async function matrixView(main, controls, sample, seq) {
  const { layer, head } = layerHeadControls(controls, sample);
  const pool = state.pool === "mean" ? "mean" : "max";
  const clip = CLIPS.includes(+state.clip) ? +state.clip : 99.9;
  controls.append(poolSelect(pool));
  const cs = el("select", { id: "clip", onchange: (e) => go({ clip: e.target.value }) });
  for (const c of CLIPS) cs.append(el("option", { value: c, text: c === 100 ? "none (max)" : c + "th percentile" }));
  cs.value = clip;
  controls.append(el("label", { title: "colours saturate at this percentile of the head's weights" }, "clip", cs));
  // Source: the attention, or a derived output whose declared axes end in
  // [query, key] (or two axes of one kind); its leading layer and head axes
  // follow the layer and head, other leading axes take index 0.
  const matrixAxes = (a) => a.length >= 2 && ((a[a.length - 2].name === "query" && a[a.length - 1].name === "key") ||
    (a[a.length - 2].name === a[a.length - 1].name && !(a[a.length - 1].labels || []).length));
  const sources = sample.derived.filter((p) => p.axes && p.shape && p.axes.length === p.shape.length && matrixAxes(p.axes) && p.shape[p.shape.length - 1] === p.shape[p.shape.length - 2]);
  const src = sources.find((p) => p.name === state.src);
  const ss = el("select", { id: "source", onchange: (e) => go({ src: e.target.value, zoom: "", cx: "", cy: "" }) }, el("option", { value: "", text: "attention" }));
  for (const p of sources) ss.append(el("option", { value: p.name, text: `${p.name} [${p.shape.join("×")}]` }));
  ss.value = src ? src.name : "";
  controls.append(el("label", {}, "matrix", ss));
  controls.append(el("button", { id: "zoom-reset", onclick: () => { view.reset(); } }, "reset zoom"));
  let idx = 0;
  if (src) {
    src.axes.slice(0, -2).forEach((a, k) => {
      const n = src.shape[k];
      idx = idx * n + (a.name === "layer" || a.name === "layer_pair" ? Math.min(layer, n - 1) : a.name === "head" ? Math.min(head, n - 1) : 0);
    });
  }
  const base = src ? `${sampleURL()}/dtile/${enc(src.name)}/${idx}/${pool}` : `${sampleURL()}/tile/${layer}/${head}/${pool}`;
  const pyr = await api(src ? `${sampleURL()}/dpyramid/${enc(src.name)}/${idx}` : `${sampleURL()}/pyramid/${layer}/${head}`);
  if (seq !== renderSeq) return;
  const hi = pyr.values[pyr.percentiles.indexOf(clip)], lo = src ? pyr.min : Math.min(0, pyr.min);
  const N = pyr.n, M = 84; // label margin
  // Token labels on token axes (attention, or a derived output's [query, key]).
  const tokenAxes = !src || (src.axes[src.axes.length - 1].name === "key" && N === sample.n);
  const lab = (i) => (tokenAxes ? sample.labels[i] : "#" + i);
  const what = src ? `derived output ${src.name} ${axesText(src.axes)}, matrix ${idx} of [${src.shape.join(", ")}]` : `Layer ${layer}, head ${head}`;
  const size = Math.max(300, Math.min(800, window.innerWidth - 260 - M, window.innerHeight - 200 - M));
  const W = size + M, H = size + M;
  const canvas = el("canvas", { id: "matrix", width: W * devicePixelRatio, height: H * devicePixelRatio, style: `width:${W}px;height:${H}px` });
  const bar = el("canvas", { width: 16, height: 200 });
  const bctx = bar.getContext("2d");
  for (let y = 0; y < 200; y++) { bctx.fillStyle = cssColour(1 - y / 199); bctx.fillRect(0, y, 16, 1); }
  const info = el("div", { class: "note", id: "matrix-info" });
  main.append(el("div", { class: "note", text: `${what}: row = query, column = key, ${N} tokens. Scroll to zoom (token labels appear when cells are large enough), drag to pan; tiles of ${pyr.tile}² cells from a ${pool}-pooled pyramid of ${pyr.levels} levels.` }),
    el("div", { id: "matrixwrap" }, canvas, el("div", { class: "colorbar" }, el("span", { text: hi.toPrecision(3) + (clip < 100 ? ` (p${clip})` : " (max)") }), bar, el("span", { text: lo.toPrecision(2) }), info)));
  const ctx = canvas.getContext("2d");
  const fit = size / N;
  const view = {
    s: +state.zoom > 0 ? +state.zoom : fit, cx: Number.isFinite(+state.cx) && state.cx !== undefined ? +state.cx : N / 2, cy: Number.isFinite(+state.cy) && state.cy !== undefined ? +state.cy : N / 2,
    reset() { this.s = fit; this.cx = N / 2; this.cy = N / 2; this.changed(); },
    changed() {
      this.s = Math.max(fit, Math.min(40, this.s));
      const half = size / 2 / this.s;
      this.cx = Math.max(Math.min(half, N / 2), Math.min(N - Math.min(half, N / 2), this.cx));
      this.cy = Math.max(Math.min(half, N / 2), Math.min(N - Math.min(half, N / 2), this.cy));
      replaceState({ zoom: this.s === fit ? "" : this.s.toPrecision(4), cx: this.s === fit ? "" : this.cx.toFixed(1), cy: this.s === fit ? "" : this.cy.toFixed(1) });
      schedule();
    },
  };
  const images = new Map(); // tile key → canvas (colourised)
  let drawing = false, again = false;
  const level = () => Math.max(0, Math.min(pyr.levels - 1, Math.floor(Math.log2(1 / view.s) + 1e-9)));
  const tileCanvas = (z, ty, tx) => {
    const key = `${z}/${ty}/${tx}`;
    if (images.has(key)) return Promise.resolve(images.get(key));
    return floats(`${base}/${key}`).then(({ shape, data }) => {
      const [r, c] = shape, cv = document.createElement("canvas");
      cv.width = c; cv.height = r;
      cv.getContext("2d").putImageData(colourise(data, c, r, lo, hi), 0, 0);
      cv.values = data;
      images.set(key, cv);
      if (images.size > 400) images.delete(images.keys().next().value);
      return cv;
    });
  };
  const schedule = () => { if (drawing) { again = true; return; } drawing = true; requestAnimationFrame(() => draw().finally(() => { drawing = false; if (again) { again = false; schedule(); } })); };
  const toScreen = (r, c) => [M + size / 2 + (c - view.cx) * view.s, M + size / 2 + (r - view.cy) * view.s];
  async function draw() {
    const z = level(), f = 2 ** z, T = pyr.tile;
    const r0 = view.cy - size / 2 / view.s, c0 = view.cx - size / 2 / view.s, r1 = view.cy + size / 2 / view.s, c1 = view.cx + size / 2 / view.s;
    const nt = Math.ceil(Math.ceil(N / f) / T);
    const ty0 = Math.max(0, Math.floor(r0 / f / T)), ty1 = Math.min(nt - 1, Math.floor((r1 - 1e-9) / f / T));
    const tx0 = Math.max(0, Math.floor(c0 / f / T)), tx1 = Math.min(nt - 1, Math.floor((c1 - 1e-9) / f / T));
    const want = [];
    for (let ty = ty0; ty <= ty1; ty++) for (let tx = tx0; tx <= tx1; tx++) want.push([ty, tx]);
    const tiles = await Promise.all(want.map(([ty, tx]) => tileCanvas(z, ty, tx)));
    if (seq !== renderSeq) return;
    ctx.setTransform(devicePixelRatio, 0, 0, devicePixelRatio, 0, 0);
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
    ctx.save();
    ctx.beginPath(); ctx.rect(M, M, size, size); ctx.clip();
    ctx.fillStyle = "#eef0f4"; ctx.fillRect(M, M, size, size);
    ctx.imageSmoothingEnabled = false;
    want.forEach(([ty, tx], i) => {
      const cv = tiles[i];
      const [x, y] = toScreen(ty * T * f, tx * T * f);
      ctx.drawImage(cv, x, y, cv.width * f * view.s, cv.height * f * view.s);
    });
    ctx.restore();
    canvas.dataset.level = z;
    canvas.dataset.tiles = want.length;
    // Token labels once a row is tall enough to read one.
    let labels = 0;
    ctx.fillStyle = "#1d2330"; ctx.font = `${Math.min(12, Math.floor(view.s * 0.8))}px "DejaVu Sans Mono", monospace`;
    if (view.s >= 9) {
      ctx.textAlign = "right"; ctx.textBaseline = "middle";
      for (let r = Math.max(0, Math.floor(r0)); r < Math.min(N, Math.ceil(r1)); r++) {
        const [, y] = toScreen(r + 0.5, 0);
        ctx.fillText(lab(r).slice(0, 12), M - 4, y);
        labels++;
      }
      ctx.save();
      ctx.textAlign = "left";
      for (let c = Math.max(0, Math.floor(c0)); c < Math.min(N, Math.ceil(c1)); c++) {
        const [x] = toScreen(0, c + 0.5);
        ctx.setTransform(devicePixelRatio, 0, 0, devicePixelRatio, 0, 0);
        ctx.translate(x, M - 4); ctx.rotate(-Math.PI / 2);
        ctx.fillText(lab(c).slice(0, 12), 0, 0);
        labels++;
      }
      ctx.restore();
    } else {
      ctx.font = '11px "DejaVu Sans", sans-serif'; ctx.fillStyle = "#6a7385"; ctx.textAlign = "left"; ctx.textBaseline = "alphabetic";
      ctx.fillText(`keys ${Math.max(0, Math.floor(c0))}–${Math.min(N, Math.ceil(c1)) - 1} →`, M, M - 8);
      ctx.save(); ctx.translate(M - 8, M + size); ctx.rotate(-Math.PI / 2);
      ctx.fillText(`queries ${Math.max(0, Math.floor(r0))}–${Math.min(N, Math.ceil(r1)) - 1} →`, 0, 0);
      ctx.restore();
    }
    canvas.dataset.labels = labels;
    info.textContent = `level ${z} (${f === 1 ? "cells" : f + "×" + f + " " + pool}), ${want.length} tiles, ${view.s >= 1 ? view.s.toFixed(1) + " px/cell" : (1 / view.s).toFixed(1) + " cells/px"}`;
    document.body.dataset.painted = "1";
  }
  const cellAt = (ev) => {
    const b = canvas.getBoundingClientRect(), x = ev.clientX - b.left - M, y = ev.clientY - b.top - M;
    if (x < 0 || y < 0 || x >= size || y >= size) return null;
    return { r: view.cy + (y - size / 2) / view.s, c: view.cx + (x - size / 2) / view.s, x, y };
  };
  canvas.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const p = cellAt(ev);
    const k = Math.exp(-ev.deltaY * 0.0025);
    if (p) { view.cx = p.c - (p.x - size / 2) / (view.s * k); view.cy = p.r - (p.y - size / 2) / (view.s * k); }
    view.s *= k;
    view.changed();
  }, { passive: false });
  let drag = null;
  canvas.addEventListener("pointerdown", (ev) => { drag = { x: ev.clientX, y: ev.clientY, cx: view.cx, cy: view.cy }; canvas.setPointerCapture(ev.pointerId); });
  canvas.addEventListener("pointerup", () => { drag = null; });
  canvas.addEventListener("pointermove", (ev) => {
    if (drag) { view.cx = drag.cx - (ev.clientX - drag.x) / view.s; view.cy = drag.cy - (ev.clientY - drag.y) / view.s; view.changed(); return; }
    const p = cellAt(ev);
    if (!p || p.r >= N || p.c >= N || p.r < 0 || p.c < 0) { tip(null); return; }
    const z = level(), f = 2 ** z, T = pyr.tile, i = Math.floor(p.r / f), j = Math.floor(p.c / f);
    const cv = images.get(`${z}/${Math.floor(i / T)}/${Math.floor(j / T)}`);
    const v = cv ? cv.values[(i % T) * cv.width + (j % T)] : NaN;
    const r = Math.floor(p.r), c = Math.floor(p.c);
    tip(f === 1 ? `query ${r} ${lab(r)}\nkey ${c} ${lab(c)}\n${src ? "value" : "weight"} ${v.toFixed(4)}` : `queries ${i * f}–${Math.min(N, (i + 1) * f) - 1}, keys ${j * f}–${Math.min(N, (j + 1) * f) - 1}\n${pool} ${v.toFixed(4)}`, ev);
  });
  canvas.addEventListener("mouseleave", () => tip(null));
  canvas.addEventListener("dblclick", (ev) => { const p = cellAt(ev); if (p) { view.cx = p.c; view.cy = p.r; } view.s *= 2; view.changed(); });
  const keys = (ev) => {
    if (ev.target.closest && ev.target.closest("input, select")) return;
    if (ev.key === "+" || ev.key === "=") { view.s *= 2; view.changed(); } else if (ev.key === "-") { view.s /= 2; view.changed(); } else if (ev.key === "0") view.reset();
  };
  document.addEventListener("keydown", keys);
  viewCleanup = () => document.removeEventListener("keydown", keys);
  window.attnscopeMatrix = view; // for tests and the console
  view.changed();
}

// ---- source-code view ----
async function codeView(main, controls, sample, seq) {
  const { layer } = layerHeadControls(controls, sample, { noHead: true });
  const hs = el("select", { id: "code-head", onchange: (e) => go({ chead: e.target.value }) }, el("option", { value: "", text: "mean of heads" }));
  for (let h = 0; h < sample.heads; h++) hs.append(el("option", { value: h, text: "head " + h }));
  hs.value = state.chead || "";
  controls.append(el("label", {}, "heads", hs));
  const from = state.from !== undefined && state.from !== "" ? int(state.from, -1) : -1;
  controls.append(el("button", { id: "code-received", onclick: () => go({ from: "" }) }, "attention received"));
  if (!sample.text || !sample.offsets || !sample.offsets.length) {
    main.append(el("div", { class: "note", text: "This sample has no text with token offsets: the source view needs them." }));
    document.body.dataset.painted = "1";
    return;
  }
  const qs = new URLSearchParams();
  if (state.chead) qs.set("head", state.chead);
  if (from >= 0) qs.set("from", from);
  const d = await api(`${sampleURL()}/code/${layer}?${qs}`);
  if (seq !== renderSeq) return;
  main.append(el("div", { class: "note", text: from >= 0 ? `Attention of token ${from} “${sample.labels[from]}” in layer ${layer} over the text; click another token to follow it.` : `Attention each token receives in layer ${layer} (mean over the queries that see it), spread over its characters. Click a token to follow the attention from it.` }));
  const legend = el("div", { class: "legend" });
  for (const c of ["keyword", "identifier", "literal", "comment", "operator", "punctuation"]) legend.append(el("span", { class: "cat-" + c, text: c }));
  if (d.language) main.append(legend); else main.append(el("div", { class: "note", text: d.category_note || "" }));
  const chars = [...d.text];
  let hiW = 0;
  for (const v of d.chars) hiW = Math.max(hiW, v);
  const catOf = new Array(chars.length).fill("");
  for (const x of d.lexemes) for (let i = x.start; i < x.end && i < chars.length; i++) catOf[i] = x.category;
  const tokOf = new Array(chars.length).fill(-1);
  sample.offsets.forEach(([a, b], t) => { for (let i = a; i < b && i < chars.length; i++) tokOf[i] = t; });
  const pre = el("pre", { class: "code", id: "code" });
  let i = 0;
  while (i < chars.length) {
    let j = i + 1;
    while (j < chars.length && tokOf[j] === tokOf[i] && catOf[j] === catOf[i] && chars[j] !== "\n" && chars[i] !== "\n") j++;
    const t = tokOf[i], w = d.chars[i] / (hiW || 1);
    const span = el("span", { class: (catOf[i] ? "cat-" + catOf[i] : "") + (t === from && t >= 0 ? " sel" : ""), text: chars.slice(i, j).join(""), style: "background:" + heat(w) });
    if (t >= 0) { span.dataset.tok = t; span.dataset.w = d.tokens[t] === undefined ? "" : d.tokens[t]; }
    pre.append(span);
    i = j;
  }
  pre.addEventListener("click", (ev) => { const s = ev.target.closest("span[data-tok]"); if (s) go({ from: s.dataset.tok }); });
  pre.addEventListener("mousemove", (ev) => {
    const s = ev.target.closest("span[data-tok]");
    if (!s) { tip(null); return; }
    const t = +s.dataset.tok;
    tip(`token ${t} ${sample.labels[t]}\nweight ${(+s.dataset.w).toFixed(4)}`, ev);
  });
  pre.addEventListener("mouseleave", () => tip(null));
  main.append(pre);
  document.body.dataset.painted = "1";
}

// ---- derived outputs, drawn by the axes their pass declares (pass.json) ----
const REDUCTIONS = ["mean", "sum", "max", "min"];
const axesText = (axes) => "[" + axes.map((a) => a.name + (a.labels && a.labels.length ? "(" + a.labels.join(", ") + ")" : "")).join(", ") + "]";

async function derivedView(main, controls, sample, seq) {
  if (!sample.derived.length) {
    main.append(el("div", { class: "note", text: "No derived outputs for this sample: run attnscope derive." }));
    document.body.dataset.painted = "1";
    return;
  }
  const info = sample.derived.find((p) => p.name === state.pass) || sample.derived[0], pass = info.name;
  const ps = el("select", { id: "pass", onchange: (e) => go({ pass: e.target.value, dl: "", dh: "" }) });
  for (const p of sample.derived) ps.append(el("option", { value: p.name, text: p.name + (p.function ? " (" + p.function + ")" : "") }));
  ps.value = pass;
  controls.append(el("label", {}, "pass", ps));
  if (!info.axes || !info.axes.length) {
    main.append(el("div", { class: "note", id: "derived-error", text: `Pass ${pass}: its pass.json declares no axes (derived by an older attnscope), so the output cannot be drawn without guessing. Delete derived/${pass} and derive it again.` }));
    document.body.dataset.painted = "1";
    return;
  }
  // The selection: an index on a layer axis, a head or a reduction over a head axis.
  const q = new URLSearchParams();
  if (/^\d+$/.test(state.dl || "")) q.set("layer", state.dl);
  if (/^\d+$/.test(state.dh || "")) q.set("head", state.dh);
  else if (REDUCTIONS.includes(state.dh)) q.set("reduce", state.dh);
  const qs = q.toString();
  const d = await api(`${runURL()}/derived/${enc(pass)}/${enc(sample.id)}${qs ? "?" + qs : ""}`);
  if (seq !== renderSeq) return;
  const axisSize = (names) => { const i = d.axes.findIndex((a) => names.includes(a.name)); return i < 0 ? 0 : d.shape[i]; };
  if (d.used_layer) {
    const n = axisSize(["layer", "layer_pair"]), pair = d.axes.some((a) => a.name === "layer_pair");
    const s = el("select", { id: "derived-layer", onchange: (e) => go({ dl: e.target.value }) });
    for (let i = 0; i < n; i++) s.append(el("option", { value: i, text: pair ? `L${i}→L${i + 1}` : "L" + i }));
    s.value = /^\d+$/.test(state.dl || "") ? Math.min(+state.dl, n - 1) : n - 1;
    controls.append(el("label", {}, pair ? "layer pair" : "layer", s));
  }
  if (d.used_head) {
    const n = axisSize(["head"]);
    const s = el("select", { id: "derived-head", onchange: (e) => go({ dh: e.target.value }) });
    for (const r of REDUCTIONS) s.append(el("option", { value: r, text: r + " of heads" }));
    for (let i = 0; i < n; i++) s.append(el("option", { value: i, text: "head " + i }));
    s.value = q.get("head") || q.get("reduce") || "mean";
    controls.append(el("label", {}, "head", s));
  }
  main.append(el("div", { class: "note", text: `derived/${pass}/${sample.id}.npy: shape [${d.shape.join(", ")}], axes ${axesText(d.axes)}${d.function ? ", function " + d.function : ""}. ${d.title}.` + (d.non_finite ? ` ${d.non_finite} NaN or infinite values drawn as 0.` : "") }));
  main.append(derivedFigure(d));
  document.body.dataset.painted = "1";
}

// derivedFigure draws an output brought to one figure by its declared axes (a
// sample's derived output or a run-level output).
function derivedFigure(d) {
  if (d.kind === "bars") return el("div", { class: "figure" }, el("div", { class: "note", text: d.y_title }), barChart(d.values, (i) => d.x_ticks[i]), el("div", { class: "note", text: d.x_title }), d.values.length <= 100 ? valueTable(d.values, 1, d.values.length, [d.y_title], d.x_ticks) : null);
  if (d.kind === "curves") return curvesChart(d);
  if (d.kind === "table") return recordTable(d);
  return heatmapFigure(d);
}

// runOutputsSection lists the run-level outputs (similarity over every sample,
// head-matching summaries, diagnose spectra) and draws the one chosen.
async function runOutputsSection(main, run, seq) {
  main.append(el("h2", { text: "Run outputs" }));
  if (run.run_outputs_error) main.append(el("div", { class: "error", id: "run-output-error", text: run.run_outputs_error }));
  if (!run.run_outputs.length) return;
  const info = run.run_outputs.find((o) => o.name === state.ro) || run.run_outputs[0];
  const s = el("select", { id: "run-output", onchange: (e) => go({ ro: e.target.value }) });
  for (const o of run.run_outputs) s.append(el("option", { value: o.name, text: o.name + (o.function ? " (" + o.function + ")" : "") }));
  s.value = info.name;
  main.append(el("label", {}, "output ", s));
  const d = await api(`${runURL()}/run-outputs/${enc(info.name)}`);
  if (seq !== renderSeq) return;
  main.append(el("div", { class: "note", id: "run-output-note", text: `run-outputs/${info.name}: shape [${d.shape.join(", ")}], axes ${axesText(d.axes)}${d.function ? ", function " + d.function : ""}.` + (d.non_finite ? ` ${d.non_finite} NaN or infinite values drawn as 0.` : "") }));
  main.append(derivedFigure(d));
}

// heatmapFigure draws a rows × cols heatmap with its axis titles, tick labels
// where cells are large enough to hold them, and the values on hover.
function heatmapFigure(d) {
  const r = d.rows, c = d.cols, data = d.values;
  let lo = Infinity, hi = -Infinity;
  for (const v of data) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  const cell = Math.max(1, Math.min(24, Math.floor(600 / Math.max(r, c))));
  const labels = cell >= 9, M = labels ? 70 : 0;
  const W = c * cell + M, H = r * cell + M;
  const cv = el("canvas", { id: "derived", width: W, height: H, style: `width:${W}px;height:${H}px` });
  const ctx = cv.getContext("2d");
  const img = document.createElement("canvas");
  img.width = c; img.height = r;
  img.getContext("2d").putImageData(colourise(Float32Array.from(data), c, r, lo, hi), 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(img, M, 0, c * cell, r * cell);
  if (labels) {
    ctx.fillStyle = "#333"; ctx.font = `${Math.min(11, cell - 1)}px sans-serif`;
    ctx.textAlign = "right"; ctx.textBaseline = "middle";
    for (let i = 0; i < r; i++) ctx.fillText(String(d.y_ticks[i]).slice(0, 10), M - 3, i * cell + cell / 2);
    for (let j = 0; j < c; j++) {
      ctx.save(); ctx.translate(M + j * cell + cell / 2, r * cell + 3); ctx.rotate(-Math.PI / 2);
      ctx.fillText(String(d.x_ticks[j]).slice(0, 10), 0, 0); ctx.restore();
    }
  }
  cv.addEventListener("mousemove", (ev) => {
    const b = cv.getBoundingClientRect(), i = Math.floor((ev.clientY - b.top) / cell), j = Math.floor((ev.clientX - b.left - M) / cell);
    if (i >= 0 && j >= 0 && i < r && j < c) tip(`${d.y_title} ${d.y_ticks[i]} · ${d.x_title} ${d.x_ticks[j]}: ${data[i * c + j].toPrecision(4)}`, ev); else tip(null);
  });
  cv.addEventListener("mouseleave", () => tip(null));
  const fig = el("div", { class: "side" }, el("div", {}, el("div", { class: "note", text: "rows: " + d.y_title }), cv,
    el("div", { class: "note", text: `columns: ${d.x_title}; ${r} × ${c}, colour from ${lo.toPrecision(3)} to ${hi.toPrecision(3)} (${d.value_label})` })));
  return r * c <= 400 ? el("div", {}, fig, valueTable(data, r, c, d.y_ticks, d.x_ticks)) : fig;
}

// recordTable lists records (rows) with their named columns.
function recordTable(d) {
  const t = el("table", { class: "grid", id: "derived" });
  const hdr = el("tr", {}, el("th", { text: d.y_title }));
  for (const x of d.x_ticks) hdr.append(el("th", { text: x }));
  t.append(hdr);
  for (let i = 0; i < Math.min(d.rows, 1000); i++) {
    const tr = el("tr", {}, el("th", { text: d.y_ticks[i] }));
    for (let j = 0; j < d.cols; j++) tr.append(el("td", { class: "num", text: d.values[i * d.cols + j].toPrecision(4) }));
    t.append(tr);
  }
  return el("div", {}, t, d.rows > 1000 ? el("div", { class: "note", text: `first 1,000 of ${d.rows} records` }) : null);
}

// curvesChart draws one curve per series over the x ticks (fractions of keys).
function curvesChart(d) {
  const ns = "http://www.w3.org/2000/svg", svg = document.createElementNS(ns, "svg"), w = 560, h = 260, m = 44;
  svg.setAttribute("width", w + m + 180); svg.setAttribute("height", h + m + 20); svg.id = "derived";
  let lo = Infinity, hi = -Infinity;
  for (const s of d.series) for (const v of s.y) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  if (!(hi > lo)) hi = lo + 1;
  const mk = (tag, attrs) => { const e = document.createElementNS(ns, tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); return e; };
  svg.append(mk("rect", { x: m, y: 10, width: w, height: h, fill: "none", stroke: "#c8ced8" }));
  d.series.forEach((s, k) => {
    const n = s.y.length, pts = s.y.map((v, i) => `${(m + (n > 1 ? i / (n - 1) : 0) * w).toFixed(1)},${(10 + (hi - v) / (hi - lo) * h).toFixed(1)}`);
    const colour = HEAD_COLOURS[k % HEAD_COLOURS.length];
    const line = mk("polyline", { points: pts.join(" "), fill: "none", stroke: colour, "stroke-width": 1.5 });
    const t = document.createElementNS(ns, "title"); t.textContent = s.name; line.append(t);
    svg.append(line);
    if (k < 16) {
      svg.append(mk("rect", { x: m + w + 12, y: 14 + k * 15, width: 10, height: 10, fill: colour }));
      const tx = mk("text", { x: m + w + 26, y: 23 + k * 15, "font-size": 11 }); tx.textContent = s.name; svg.append(tx);
    }
  });
  for (const [v, y] of [[hi, 14], [lo, 10 + h]]) { const tx = mk("text", { x: m - 4, y, "text-anchor": "end", "font-size": 10 }); tx.textContent = v.toPrecision(3); svg.append(tx); }
  const xt = mk("text", { x: m + w / 2, y: h + 32, "text-anchor": "middle", "font-size": 11 }); xt.textContent = d.x_title; svg.append(xt);
  return el("div", {}, el("div", { class: "note", text: d.y_title }), svg);
}

function barChart(data, label) {
  const n = data.length, bw = Math.max(2, Math.min(28, Math.floor(720 / n))), h = 180;
  let hi = 0, lo = 0;
  for (const v of data) { hi = Math.max(hi, v); lo = Math.min(lo, v); }
  const ns = "http://www.w3.org/2000/svg", svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", n * bw + 50); svg.setAttribute("height", h + 70); svg.id = "derived";
  const y = (v) => 10 + (hi - v) / ((hi - lo) || 1) * h;
  data.forEach((v, i) => {
    const r = document.createElementNS(ns, "rect");
    r.setAttribute("x", 40 + i * bw); r.setAttribute("width", bw - 1);
    r.setAttribute("y", Math.min(y(v), y(0))); r.setAttribute("height", Math.abs(y(v) - y(0)) || 0.5);
    r.setAttribute("fill", "#2f6fd6");
    const t = document.createElementNS(ns, "title"); t.textContent = `${label(i)}: ${v.toPrecision(4)}`; r.append(t);
    svg.append(r);
    if (bw >= 12) {
      const tx = document.createElementNS(ns, "text");
      tx.setAttribute("transform", `translate(${40 + i * bw + bw / 2},${h + 16}) rotate(60)`); tx.setAttribute("font-size", "10");
      tx.textContent = label(i).slice(0, 10); svg.append(tx);
    }
  });
  for (const v of [lo, hi]) {
    const tx = document.createElementNS(ns, "text");
    tx.setAttribute("x", 36); tx.setAttribute("y", y(v) + 4); tx.setAttribute("text-anchor", "end"); tx.setAttribute("font-size", "10");
    tx.textContent = v.toPrecision(3); svg.append(tx);
  }
  return svg;
}

function valueTable(data, r, c, rowTicks, colTicks) {
  const t = el("table", { class: "grid" });
  const hdr = el("tr", {}, el("th", { text: "" }));
  for (let j = 0; j < c; j++) hdr.append(el("th", { text: colTicks ? colTicks[j] : j }));
  t.append(hdr);
  for (let i = 0; i < r; i++) {
    const tr = el("tr", {}, el("th", { text: rowTicks ? rowTicks[i] : i }));
    for (let j = 0; j < c; j++) tr.append(el("td", { class: "num", text: data[i * c + j].toPrecision(4) }));
    t.append(tr);
  }
  return t;
}

// ---- metrics table ----
async function metricsView(main, controls, sample, seq) {
  if (!cur.run.metrics) {
    main.append(el("div", { class: "note", text: "This run has no metrics table: run attnscope derive." }));
    document.body.dataset.painted = "1";
    return;
  }
  await metricsTable(main, cur.run, seq, controls);
  document.body.dataset.painted = "1";
}

async function metricsTable(main, run, seq, controls) {
  const rows = await api(`/api/runs/${enc(run.key)}/metrics`);
  if (seq !== renderSeq) return;
  const cols = ["sample", "pass", "layer", "head", "metric", "value"];
  const sortCol = cols.includes(state.sort) ? state.sort : "", asc = state.dir !== "desc";
  const filter = (state.filter || "").toLowerCase();
  const input = el("input", { id: "metrics-filter", type: "search", placeholder: "filter rows (e.g. entropy)", value: state.filter || "", size: 30 });
  input.addEventListener("change", () => go({ filter: input.value }));
  (controls || main).append(el("label", {}, "filter", input));
  let view = rows.filter((r) => !filter || cols.some((c) => String(r[c]).toLowerCase().includes(filter)));
  if (sortCol) {
    view = view.slice().sort((a, b) => {
      const x = a[sortCol], y = b[sortCol];
      const c = typeof x === "number" || x === null ? (x ?? -Infinity) - (y ?? -Infinity) : String(x).localeCompare(String(y));
      return asc ? c : -c;
    });
  }
  const shown = view.slice(0, 500);
  const t = el("table", { class: "grid", id: "metrics" });
  t.append(el("tr", {}, ...cols.map((c) => el("th", {
    text: c, class: c === sortCol ? "sorted" + (asc ? " asc" : "") : "", dataset: { col: c },
    onclick: () => go({ sort: c, dir: c === sortCol && asc ? "desc" : "asc" }),
  })), el("th", { text: "" })));
  for (const r of shown) {
    const target = { run: run.key, sample: r.sample, view: "matrix", layer: r.layer >= 0 ? r.layer : 0, head: r.head >= 0 ? r.head : 0 };
    t.append(el("tr", {},
      el("td", {}, el("a", { href: hashOf({ run: run.key, sample: r.sample }), text: r.sample })),
      el("td", { text: r.pass }), el("td", { class: "num", text: r.layer < 0 ? "all" : r.layer }), el("td", { class: "num", text: r.head < 0 ? "all" : r.head }),
      el("td", { text: r.metric }), el("td", { class: "num", text: r.value === null ? "n/a" : r.value.toPrecision(5) }),
      el("td", {}, el("a", { href: hashOf(target), class: "open-link", text: "open" }))));
  }
  main.append(el("div", { class: "note", text: `${view.length} of ${rows.length} rows${view.length > shown.length ? ", first 500 shown" : ""}; click a column to sort, “open” shows the layer and head in the matrix view.` }), t);
}

// ---- comparison of two samples or runs ----
async function compareView(main, controls, sample, seq) {
  const { layer, head } = layerHeadControls(controls, sample);
  const runs = await api("/api/runs");
  if (seq !== renderSeq) return;
  const run2 = runs.find((r) => r.key === state.run2) || cur.run;
  const other = run2.samples.includes(state.sample2) ? state.sample2 : (run2.samples.find((s) => s !== sample.id || run2.key !== cur.run.key) || sample.id);
  const rs = el("select", { id: "run2", onchange: (e) => go({ run2: e.target.value, sample2: "" }) });
  for (const r of runs) rs.append(el("option", { value: r.key, text: r.key }));
  rs.value = run2.key;
  const ss = el("select", { id: "sample2", onchange: (e) => go({ sample2: e.target.value }) });
  for (const s of run2.samples) ss.append(el("option", { value: s, text: s }));
  ss.value = other;
  controls.append(el("label", {}, "compare with run", rs), el("label", {}, "sample", ss));
  const s2 = await api(sampleURL(run2.key, other));
  if (seq !== renderSeq) return;
  const side = el("div", { class: "side", id: "compare" });
  const col = async (runKey, s) => {
    const l = Math.min(layer, s.layers - 1), h = Math.min(head, s.heads - 1);
    const box = el("div", {}, el("h2", {}, el("a", { href: hashOf({ run: runKey, sample: s.id, view: "matrix", layer: l, head: h }), text: `${runKey} / ${s.id}` })),
      el("div", { class: "note", text: `${s.n} tokens, layer ${l}, head ${h}` }));
    const { shape, data } = await floats(`${sampleURL(runKey, s.id)}/thumbs/${l}/max`);
    const d = shape[1], one = data.subarray(h * d * d, (h + 1) * d * d);
    let hi = 0;
    for (const v of one) hi = Math.max(hi, v);
    const cv = el("canvas", { width: d, height: d, style: "width:256px;height:256px" });
    cv.getContext("2d").putImageData(colourise(one, d, d, 0, hi), 0, 0);
    box.append(cv);
    let chars = null;
    if (s.text && s.offsets && s.offsets.length) {
      const c = await api(`${sampleURL(runKey, s.id)}/code/${l}`);
      chars = c.chars;
      let m = 0;
      for (const v of c.chars) m = Math.max(m, v);
      const pre = el("pre", { class: "code" });
      [...c.text].forEach((ch, i) => pre.append(el("span", { text: ch, style: "background:" + heat(c.chars[i] / (m || 1)) })));
      box.append(el("div", { class: "note", text: "attention received per character (mean of heads)" }), pre);
    }
    return { box, chars, text: s.text };
  };
  const [a, b] = await Promise.all([col(cur.run.key, sample), col(run2.key, s2)]);
  if (seq !== renderSeq) return;
  side.append(a.box, b.box);
  main.append(el("div", { class: "note", text: "Two samples side by side at the same layer and head; texts are aligned by characters, so two models' tokenisations of one prompt can be compared." }), side);
  if (a.chars && b.chars && a.text === b.text) {
    let diff = 0;
    a.chars.forEach((v, i) => { diff = Math.max(diff, Math.abs(v - b.chars[i])); });
    main.append(el("div", { class: "note", id: "compare-diff", text: `Same text: largest per-character difference of attention received ${diff.toPrecision(3)}.` }));
  }
  document.body.dataset.painted = "1";
}

window.addEventListener("hashchange", render);
document.addEventListener("DOMContentLoaded", render);
