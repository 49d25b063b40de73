// The operation timeline: one row per lane (a worker's successive processes), each
// operation a bar from invocation to completion, coloured by outcome; nemesis faults as
// shaded bands. Drawn on a canvas from a flat array so 100,000 operations stay smooth.
// Wheel zooms around the pointer, drag pans, double-click resets.
(function () {
  var el = document.getElementById('timeline-data');
  var cv = document.getElementById('timeline');
  if (!el || !cv) return;
  var d = JSON.parse(el.textContent);
  var bands = JSON.parse(document.getElementById('bands-data').textContent);
  var ctx = cv.getContext('2d');
  var tip = document.getElementById('tl-tip');
  var ops = d.ops, n = ops.length / 5, lanes = Math.max(d.lanes.length, 1);
  var LABEL = 110, AXIS = 32;
  var rowH = lanes <= 40 ? 16 : Math.max(3, Math.floor(640 / lanes));
  var END = Math.max(d.end_us, 1);
  var t0 = 0, t1 = END, W = 800;
  var COL = ['#2a9d4b', '#d1495b', '#e39b1b', '#8a8a8a'];
  var TYPE = ['ok', 'fail', 'info', 'pending'];
  var BAND = { partition: 'rgba(60,120,220,.28)', kill: 'rgba(220,60,60,.25)', pause: 'rgba(150,90,200,.28)' };
  function X(t) { return LABEL + (t - t0) / (t1 - t0) * (W - LABEL); }
  function T(x) { return t0 + (x - LABEL) / (W - LABEL) * (t1 - t0); }
  function size() {
    W = cv.parentElement.clientWidth;
    var h = lanes * rowH + AXIS, dpr = window.devicePixelRatio || 1;
    cv.width = W * dpr; cv.height = h * dpr;
    cv.style.width = W + 'px'; cv.style.height = h + 'px';
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    draw();
  }
  function fmt(us) { return us === 0 ? '0' : us >= 1e6 ? (us / 1e6).toFixed(3) + 's' : (us / 1e3).toFixed(2) + 'ms'; }
  function draw() {
    var h = lanes * rowH + AXIS;
    ctx.clearRect(0, 0, W, h);
    ctx.font = '10.5px system-ui, sans-serif';
    // Time ticks.
    ctx.fillStyle = '#667'; ctx.strokeStyle = '#eef';
    var span = t1 - t0, step = Math.pow(10, Math.floor(Math.log10(span / 8)));
    if (span / step > 20) step *= 5; else if (span / step > 10) step *= 2;
    for (var t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
      var x = X(t);
      ctx.beginPath(); ctx.moveTo(x, AXIS); ctx.lineTo(x, h); ctx.stroke();
      ctx.fillText(fmt(t), x + 2, AXIS - 22);
    }
    // Lane labels.
    if (rowH >= 9) {
      ctx.fillStyle = '#445';
      for (var l = 0; l < d.lanes.length; l++) ctx.fillText('p ' + d.lanes[l], 2, AXIS + l * rowH + rowH - 4, LABEL - 6);
    }
    // Operations: one pass per colour keeps fillStyle changes to four.
    var pad = rowH >= 6 ? 1 : 0;
    for (var k = 0; k < 4; k++) {
      ctx.fillStyle = COL[k];
      for (var i = 0; i < n; i++) {
        var o = i * 5;
        if (ops[o + 3] !== k) continue;
        var s = ops[o + 1], e = ops[o + 2];
        if (e < t0 || s > t1) continue;
        var x0 = Math.max(X(s), LABEL), x1 = Math.min(X(e), W);
        ctx.fillRect(x0, AXIS + ops[o] * rowH + pad, Math.max(x1 - x0, 1), rowH - 2 * pad);
      }
    }
    // Faults last, translucent over the bars: in a dense run the bars fill every row and
    // would hide a band drawn behind them. A label is drawn only where it does not run into
    // the one before (faults every second would print over each other); zooming in makes
    // room, and hovering the strip above the rows names the fault under the pointer.
    var labelEnd = -Infinity;
    for (var b = 0; b < bands.length; b++) {
      var bx0 = Math.max(X(bands[b].from / 1000), LABEL), bx1 = Math.min(X(bands[b].to / 1000), W);
      if (bx1 < LABEL || bx0 > W) continue;
      ctx.fillStyle = BAND[bands[b].kind] || 'rgba(120,120,140,.14)';
      ctx.fillRect(bx0, AXIS - 9, Math.max(bx1 - bx0, 2), h - AXIS + 9);
      var text = bands[b].kind + ' ' + bands[b].label;
      if (bx0 + 2 >= labelEnd + 6) {
        ctx.fillStyle = '#445';
        ctx.fillText(text, bx0 + 2, AXIS - 11);
        labelEnd = bx0 + 2 + ctx.measureText(text).width;
      }
    }
  }
  // The faults under time t, as tooltip lines.
  function faultsAt(t) {
    var out = [];
    for (var b = 0; b < bands.length; b++) {
      if (bands[b].from / 1000 <= t && t <= bands[b].to / 1000) {
        out.push(bands[b].kind + ' ' + bands[b].label + '  ' + fmt(bands[b].from / 1000) + ' → ' + fmt(bands[b].to / 1000));
      }
    }
    return out;
  }
  function clamp() {
    var span = Math.max(t1 - t0, 50);
    if (span > END) { t0 = 0; t1 = END; return; }
    if (t0 < 0) { t0 = 0; t1 = span; }
    if (t1 > END) { t1 = END; t0 = END - span; }
  }
  cv.addEventListener('wheel', function (ev) {
    ev.preventDefault();
    var r = cv.getBoundingClientRect(), tm = T(ev.clientX - r.left), f = ev.deltaY > 0 ? 1.25 : 0.8;
    t0 = tm - (tm - t0) * f; t1 = tm + (t1 - tm) * f; clamp(); draw();
  }, { passive: false });
  var drag = null;
  cv.addEventListener('mousedown', function (ev) { drag = { x: ev.clientX, t0: t0, t1: t1 }; cv.style.cursor = 'grabbing'; });
  window.addEventListener('mouseup', function () { drag = null; cv.style.cursor = 'grab'; });
  window.addEventListener('mousemove', function (ev) {
    if (drag) {
      var dt = (ev.clientX - drag.x) / (W - LABEL) * (drag.t1 - drag.t0);
      t0 = drag.t0 - dt; t1 = drag.t1 - dt; clamp(); draw(); return;
    }
    var r = cv.getBoundingClientRect(), x = ev.clientX - r.left, y = ev.clientY - r.top;
    if (x >= LABEL && x <= W && y >= AXIS - 20 && y < AXIS) {
      var here = faultsAt(T(x));
      if (here.length === 0) { tip.style.display = 'none'; return; }
      tip.textContent = here.join('\n');
      tip.style.display = 'block'; tip.style.left = (ev.clientX + 12) + 'px'; tip.style.top = (ev.clientY + 12) + 'px';
      return;
    }
    if (x < LABEL || x > W || y < AXIS || y > r.height) { tip.style.display = 'none'; return; }
    var lane = Math.floor((y - AXIS) / rowH), t = T(x), slack = 3 / (W - LABEL) * (t1 - t0), hit = -1;
    for (var i = 0; i < n; i++) {
      var o = i * 5;
      if (ops[o] === lane && ops[o + 1] - slack <= t && t <= ops[o + 2] + slack) { hit = i; break; }
    }
    if (hit < 0) { tip.style.display = 'none'; return; }
    var o2 = hit * 5;
    tip.textContent = 'process ' + d.procs[hit] + '  ' + d.fs[ops[o2 + 4]] + '  ' + TYPE[ops[o2 + 3]] + '\n' +
      (d.vals[hit] || '') + '\n' + fmt(ops[o2 + 1]) + ' → ' + fmt(ops[o2 + 2]) + '  (' + fmt(ops[o2 + 2] - ops[o2 + 1]) + ')';
    tip.style.display = 'block'; tip.style.left = (ev.clientX + 12) + 'px'; tip.style.top = (ev.clientY + 12) + 'px';
  });
  cv.addEventListener('mouseleave', function () { tip.style.display = 'none'; });
  cv.addEventListener('dblclick', function () { t0 = 0; t1 = END; draw(); });
  var reset = document.getElementById('tl-reset');
  if (reset) reset.addEventListener('click', function () { t0 = 0; t1 = END; draw(); });
  window.addEventListener('resize', size);
  size();
})();
