// The operation timeline: one row per lane (a worker's successive processes), each
// operation a bar from invocation to completion, coloured by outcome; nemesis faults as
// shaded bands. Drawn on a canvas from a flat array so 100,000 operations stay smooth.
// Zoom, pan, ticks and bands are timeaxis.js' (sunderZoom); double-click resets.
(function () {
  var el = document.getElementById('timeline-data');
  var cv = document.getElementById('timeline');
  if (!el || !cv || typeof sunderZoom !== 'function') return;
  var d = JSON.parse(el.textContent);
  var bands = JSON.parse(document.getElementById('bands-data').textContent);
  var ctx = cv.getContext('2d');
  var tip = document.getElementById('tl-tip');
  var ops = d.ops, n = ops.length / 5, lanes = Math.max(d.lanes.length, 1);
  var LABEL = 110, AXIS = 32;
  var rowH = lanes <= 40 ? 16 : Math.max(3, Math.floor(640 / lanes));
  var END = Math.max(d.end_us, 1);
  var W = 800;
  var COL = ['#2a9d4b', '#d1495b', '#e39b1b', '#8a8a8a'];
  var TYPE = ['ok', 'fail', 'info', 'pending'];
  var fmt = sunderZoom.fmt;
  var z = sunderZoom(cv, { left: LABEL, lo: 0, hi: END, home: [0, END], draw: draw });
  function size() {
    W = cv.parentElement.clientWidth; z.W = W;
    var h = lanes * rowH + AXIS, dpr = window.devicePixelRatio || 1;
    cv.width = W * dpr; cv.height = h * dpr;
    cv.style.width = W + 'px'; cv.style.height = h + 'px';
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    draw();
  }
  function draw() {
    var h = lanes * rowH + AXIS, t0 = z.t0, t1 = z.t1;
    ctx.clearRect(0, 0, W, h);
    ctx.font = '10.5px system-ui, sans-serif';
    z.ticks(ctx, AXIS, h);
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
        var x0 = Math.max(z.X(s), LABEL), x1 = Math.min(z.X(e), W);
        ctx.fillRect(x0, AXIS + ops[o] * rowH + pad, Math.max(x1 - x0, 1), rowH - 2 * pad);
      }
    }
    // Faults last, translucent over the bars: in a dense run the bars fill every row and
    // would hide a band drawn behind them.
    z.bands(ctx, bands, AXIS, h);
  }
  window.addEventListener('mousemove', function (ev) {
    if (z.dragging()) return;
    var r = cv.getBoundingClientRect(), x = ev.clientX - r.left, y = ev.clientY - r.top;
    if (x >= LABEL && x <= W && y >= AXIS - 20 && y < AXIS) {
      var here = sunderZoom.faultsAt(bands, z.T(x));
      if (here.length === 0) { tip.style.display = 'none'; return; }
      sunderZoom.tip(tip, ev, here.join('\n'));
      return;
    }
    if (x < LABEL || x > W || y < AXIS || y > r.height) { tip.style.display = 'none'; return; }
    var lane = Math.floor((y - AXIS) / rowH), t = z.T(x), slack = 3 / (W - LABEL) * (z.t1 - z.t0), hit = -1;
    for (var i = 0; i < n; i++) {
      var o = i * 5;
      if (ops[o] === lane && ops[o + 1] - slack <= t && t <= ops[o + 2] + slack) { hit = i; break; }
    }
    if (hit < 0) { tip.style.display = 'none'; return; }
    var o2 = hit * 5;
    sunderZoom.tip(tip, ev, 'process ' + d.procs[hit] + '  ' + d.fs[ops[o2 + 4]] + '  ' + TYPE[ops[o2 + 3]] + '\n' +
      (d.vals[hit] || '') + '\n' + fmt(ops[o2 + 1]) + ' → ' + fmt(ops[o2 + 2]) + '  (' + fmt(ops[o2 + 2] - ops[o2 + 1]) + ')');
  });
  cv.addEventListener('mouseleave', function () { tip.style.display = 'none'; });
  var reset = document.getElementById('tl-reset');
  if (reset) reset.addEventListener('click', z.goHome);
  window.addEventListener('resize', size);
  size();
})();
