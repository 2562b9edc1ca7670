/**
 * The live dashboard served at `/`: one self-contained page (inline CSS and script, no build step,
 * nothing fetched from elsewhere). It polls /dashboard/stats once a second and shows tokens/s, batch
 * size, queue, KV memory, the expert cache's hit rate and a layer x expert heatmap of the tokens
 * routed since the previous poll (or since start, while the server is idle).
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>moesaic serve</title>
<link rel="icon" href="data:,">
<style>
  body { font: 14px system-ui, sans-serif; margin: 24px; color: #222; background: #fafafa; }
  h1 { font-size: 20px; margin: 0 0 16px; }
  .tiles { display: flex; gap: 12px; flex-wrap: wrap; margin-bottom: 20px; }
  .tile { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 10px 16px; min-width: 120px; }
  .tile .v { font-size: 24px; font-weight: 600; }
  .tile .k { color: #666; font-size: 12px; }
  canvas { background: #fff; border: 1px solid #ddd; }
  #note { color: #666; font-size: 12px; margin-top: 6px; }
</style>
</head>
<body>
<h1>moesaic serve &middot; <span id="model">-</span></h1>
<div class="tiles">
  <div class="tile"><div class="v" id="tps">-</div><div class="k">tokens/s</div></div>
  <div class="tile"><div class="v" id="batch">-</div><div class="k">batch size (last step)</div></div>
  <div class="tile"><div class="v" id="running">-</div><div class="k">running</div></div>
  <div class="tile"><div class="v" id="queue">-</div><div class="k">queue</div></div>
  <div class="tile"><div class="v" id="kv">-</div><div class="k">KV cache MiB</div></div>
  <div class="tile"><div class="v" id="hit">-</div><div class="k">expert cache hit rate</div></div>
</div>
<div>Expert activations (rows: MoE layers, columns: experts; darker = more tokens)</div>
<canvas id="heat" width="640" height="240" data-cells="0" data-total="0"></canvas>
<div id="note">waiting for data</div>
<script>
"use strict";
let prev = null;
function sum(rows) { let s = 0; for (const r of rows) for (const v of r) s += v; return s; }
function draw(rows) {
  const c = document.getElementById('heat');
  const g = c.getContext('2d');
  const L = rows.length, E = L ? rows[0].length : 0;
  g.clearRect(0, 0, c.width, c.height);
  if (!L || !E) return;
  let max = 0;
  for (const r of rows) for (const v of r) max = Math.max(max, v);
  const w = c.width / E, h = c.height / L;
  for (let l = 0; l < L; l++) for (let e = 0; e < E; e++) {
    const a = max > 0 ? rows[l][e] / max : 0;
    g.fillStyle = 'rgba(20, 80, 200,' + (0.05 + 0.95 * a).toFixed(3) + ')';
    g.fillRect(e * w + 1, l * h + 1, w - 2, h - 2);
  }
  c.dataset.cells = String(L * E);
  c.dataset.total = String(sum(rows));
}
async function poll() {
  try {
    const r = await fetch('/dashboard/stats');
    if (!r.ok) throw new Error('HTTP ' + r.status);
    const s = await r.json();
    document.getElementById('model').textContent = s.model;
    document.getElementById('batch').textContent = s.batch_size;
    document.getElementById('running').textContent = s.running;
    document.getElementById('queue').textContent = s.queue;
    document.getElementById('kv').textContent = (s.kv_bytes / 1048576).toFixed(1);
    const c = s.cache;
    document.getElementById('hit').textContent = c && c.hits + c.misses > 0 ? (100 * c.hits / (c.hits + c.misses)).toFixed(1) + '%' : 'n/a';
    let rows = s.activations;
    if (prev) {
      const dt = (s.time_ms - prev.time_ms) / 1000;
      document.getElementById('tps').textContent = dt > 0 ? ((s.tokens_out - prev.tokens_out) / dt).toFixed(1) : '-';
      const recent = rows.map((r, l) => r.map((v, e) => v - prev.activations[l][e]));
      if (sum(recent) > 0) rows = recent;
    }
    draw(rows);
    document.getElementById('note').textContent = 'updated ' + new Date(s.time_ms).toLocaleTimeString() + ', ' + sum(s.activations) + ' routed tokens since start';
    prev = s;
  } catch (e) {
    document.getElementById('note').textContent = 'server unreachable: ' + e.message;
  }
}
poll();
setInterval(poll, 1000);
</script>
</body>
</html>
`;
