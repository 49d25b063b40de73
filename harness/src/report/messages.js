// The message diagram (Maelstrom runs): one row per process (nodes, services, clients),
// each message a line from (its source, when it was sent) to (its destination, when it left
// the network), coloured by type. A delivered message ends in an arrowhead (dotted when it
// is a duplicate copy, dashed when it was held back to be reordered); one the network
// dropped stops halfway toward its destination in a cross (red: cut by a partition, dark:
// lost); one that reached a down node or a full queue ends in a cross at its destination.
// Zoom and pan are the operation timeline's (timeaxis.js); the window inputs move the view.
(function () {
  var el = document.getElementById('messages-data');
  var cv = document.getElementById('mgram');
  if (!el || !cv || typeof sunderZoom !== 'function') return;
  var d = JSON.parse(el.textContent);
  var be = document.getElementById('bands-data');
  var bands = be ? JSON.parse(be.textContent) : [];
  var ctx = cv.getContext('2d');
  var tip = document.getElementById('mg-tip');
  var M = d.msgs, n = M.length / 8, lanes = Math.max(d.lanes.length, 1);
  var LABEL = 90, AXIS = 32, BOTTOM = 8;
  var rowH = Math.max(22, Math.min(48, Math.floor(560 / lanes)));
  var H = lanes * rowH + AXIS + BOTTOM, W = 800;
  var fmt = sunderZoom.fmt;
  var FATE = {};
  for (var f = 0; f < d.fates.length; f++) FATE[d.fates[f]] = f;
  // How each fate ends: 0 an arrowhead, 1 a cross halfway, 2 a cross at the destination.
  var END_MARK = [], DASH = [];
  for (f = 0; f < d.fates.length; f++) {
    var name = d.fates[f];
    END_MARK[f] = name === 'lost' || name === 'cut' ? 1 : (name === 'delivered' || name === 'duplicate' || name === 'reordered') ? 0 : 2;
    DASH[f] = name === 'duplicate' ? [2, 3] : name === 'reordered' ? [7, 4] : [];
  }
  // A dropped message has no delivery time: its line runs toward where a typical message
  // (the median delay of those delivered) would have arrived, and stops halfway.
  var delays = [];
  for (var i = 0; i < n; i++) if (M[i * 8 + 1] >= 0) delays.push(M[i * 8 + 1] - M[i * 8]);
  delays.sort(function (a, b) { return a - b; });
  var TYPICAL = Math.max(delays.length ? delays[delays.length >> 1] : 1000, 1);
  // Messages by type, so each colour is one pass.
  var byType = [];
  for (var t = 0; t < d.types.length; t++) byType.push([]);
  for (i = 0; i < n; i++) byType[M[i * 8 + 4]].push(i);
  var hot = -1;
  var z = sunderZoom(cv, { left: LABEL, lo: d.lo_us, hi: d.hi_us, home: d.home, draw: draw });
  function Y(p) { return AXIS + d.lane_of[p] * rowH + rowH / 2; }
  // Message i's end in time (µs) as drawn: delivered, or halfway to a typical arrival.
  function endT(i) {
    var o = i * 8;
    return M[o + 1] >= 0 ? M[o + 1] : M[o] + TYPICAL / 2;
  }
  // Message i's line as [x0, y0, x1, y1].
  function seg(i) {
    var o = i * 8, y0 = Y(M[o + 2]), y1 = Y(M[o + 3]);
    if (M[o + 1] < 0) y1 = (y0 + y1) / 2;
    return [z.X(M[o]), y0, z.X(endT(i)), y1];
  }
  function visible(i) {
    return endT(i) >= z.t0 && M[i * 8] <= z.t1;
  }
  function size() {
    W = cv.parentElement.clientWidth; z.W = W;
    var dpr = window.devicePixelRatio || 1;
    cv.width = W * dpr; cv.height = H * dpr;
    cv.style.width = W + 'px'; cv.style.height = H + 'px';
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    draw();
  }
  function arrowhead(s, size) {
    var dx = s[2] - s[0], dy = s[3] - s[1], len = Math.sqrt(dx * dx + dy * dy);
    if (len < 1) return;
    var ux = dx / len, uy = dy / len;
    ctx.moveTo(s[2], s[3]);
    ctx.lineTo(s[2] - ux * size - uy * size * 0.45, s[3] - uy * size + ux * size * 0.45);
    ctx.lineTo(s[2] - ux * size + uy * size * 0.45, s[3] - uy * size - ux * size * 0.45);
    ctx.closePath();
  }
  function cross(x, y, r) {
    ctx.moveTo(x - r, y - r); ctx.lineTo(x + r, y + r);
    ctx.moveTo(x - r, y + r); ctx.lineTo(x + r, y - r);
  }
  function draw() {
    ctx.clearRect(0, 0, W, H);
    ctx.font = '10.5px system-ui, sans-serif';
    z.ticks(ctx, AXIS, H - BOTTOM);
    // Faults first, behind the arrows: messages are sparse enough to read through them.
    z.bands(ctx, bands, AXIS, H - BOTTOM);
    // Lanes.
    ctx.strokeStyle = '#dde'; ctx.fillStyle = '#445'; ctx.lineWidth = 1; ctx.setLineDash([]);
    for (var l = 0; l < d.lanes.length; l++) {
      var y = AXIS + l * rowH + rowH / 2;
      ctx.beginPath(); ctx.moveTo(LABEL, y); ctx.lineTo(W, y); ctx.stroke();
      ctx.fillText(d.lanes[l], 4, y + 4, LABEL - 8);
    }
    ctx.save();
    ctx.beginPath(); ctx.rect(LABEL, AXIS - 2, W - LABEL, H - AXIS); ctx.clip();
    var shown = 0;
    for (var i = 0; i < n; i++) if (visible(i)) shown++;
    // Arrowheads only where there is room to see them.
    var heads = shown <= 4000, width = shown <= 20000 ? 1.3 : 0.8;
    for (var t = 0; t < byType.length; t++) {
      var ids = byType[t];
      ctx.strokeStyle = d.colors[t]; ctx.fillStyle = d.colors[t]; ctx.lineWidth = width;
      // One path per dash style: solid, dotted (duplicates), dashed (reordered).
      for (var pass = 0; pass < 3; pass++) {
        ctx.setLineDash(pass === 0 ? [] : pass === 1 ? [2, 3] : [7, 4]);
        ctx.beginPath();
        for (var k = 0; k < ids.length; k++) {
          var j = ids[k], fate = M[j * 8 + 5], dash = DASH[fate];
          var p = dash.length === 0 ? 0 : dash[0] === 2 ? 1 : 2;
          if (p !== pass || !visible(j)) continue;
          var s = seg(j);
          ctx.moveTo(s[0], s[1]); ctx.lineTo(s[2], s[3]);
        }
        ctx.stroke();
      }
      ctx.setLineDash([]);
      if (heads) {
        ctx.beginPath();
        for (k = 0; k < ids.length; k++) {
          j = ids[k];
          if (END_MARK[M[j * 8 + 5]] === 0 && visible(j)) arrowhead(seg(j), 6);
        }
        ctx.fill();
      }
    }
    // Crosses: dropped halfway (red when a partition cut it), or at a down node or full queue.
    ctx.setLineDash([]); ctx.lineWidth = 1.8;
    var CROSS = [['#c0392b', function (f) { return f === FATE.cut; }],
                 ['#333', function (f) { return f !== FATE.cut && END_MARK[f] !== 0; }]];
    for (var c = 0; c < CROSS.length; c++) {
      ctx.strokeStyle = CROSS[c][0];
      ctx.beginPath();
      for (i = 0; i < n; i++) {
        if (!CROSS[c][1](M[i * 8 + 5]) || !visible(i)) continue;
        var e = seg(i);
        cross(e[2], e[3], 3.5);
      }
      ctx.stroke();
    }
    if (hot >= 0 && visible(hot)) {
      var h = seg(hot);
      ctx.strokeStyle = '#000'; ctx.lineWidth = 3; ctx.setLineDash([]);
      ctx.beginPath(); ctx.moveTo(h[0], h[1]); ctx.lineTo(h[2], h[3]); ctx.stroke();
    }
    ctx.restore();
    syncInputs();
  }
  function idText(v) { return v === -1 ? '–' : v === -2 ? '(too large)' : String(v); }
  function describe(i) {
    var o = i * 8, sent = M[o], del = M[o + 1], fate = d.fates[M[o + 5]];
    var when = del >= 0
      ? 'sent ' + fmt(sent) + ' → ' + (END_MARK[M[o + 5]] === 0 ? 'delivered ' : 'dropped at ') + fmt(del) + '  (' + fmt(del - sent) + ')'
      : 'sent ' + fmt(sent) + ', never delivered';
    return d.procs[M[o + 2]] + ' → ' + d.procs[M[o + 3]] + '  ' + d.types[M[o + 4]] + '  ' + fate + '\n' +
      'msg_id ' + idText(M[o + 6]) + '  in_reply_to ' + idText(M[o + 7]) + '\n' + when;
  }
  // The message whose line passes nearest (x, y), within a few pixels; -1 when none.
  function nearest(x, y) {
    var best = -1, bestD = 25;
    for (var i = 0; i < n; i++) {
      if (!visible(i)) continue;
      var s = seg(i), dx = s[2] - s[0], dy = s[3] - s[1], l2 = dx * dx + dy * dy;
      var u = l2 > 0 ? Math.max(0, Math.min(1, ((x - s[0]) * dx + (y - s[1]) * dy) / l2)) : 0;
      var ex = s[0] + u * dx - x, ey = s[1] + u * dy - y, d2 = ex * ex + ey * ey;
      if (d2 < bestD) { bestD = d2; best = i; }
    }
    return best;
  }
  window.addEventListener('mousemove', function (ev) {
    if (z.dragging()) return;
    var r = cv.getBoundingClientRect(), x = ev.clientX - r.left, y = ev.clientY - r.top;
    if (x >= LABEL && x <= W && y >= AXIS - 20 && y < AXIS) {
      var here = sunderZoom.faultsAt(bands, z.T(x));
      if (here.length === 0) tip.style.display = 'none'; else sunderZoom.tip(tip, ev, here.join('\n'));
      return;
    }
    var was = hot;
    hot = x < LABEL || x > W || y < AXIS - 2 || y > H ? -1 : nearest(x, y);
    if (hot !== was) draw();
    if (hot < 0) { tip.style.display = 'none'; return; }
    sunderZoom.tip(tip, ev, describe(hot));
  });
  cv.addEventListener('mouseleave', function () {
    tip.style.display = 'none';
    if (hot >= 0) { hot = -1; draw(); }
  });
  // The window chooser: its inputs follow the view, and set it.
  var from = document.getElementById('mg-from'), to = document.getElementById('mg-to');
  function syncInputs() {
    if (from && document.activeElement !== from) from.value = (z.t0 / 1e6).toFixed(3);
    if (to && document.activeElement !== to) to.value = (z.t1 / 1e6).toFixed(3);
  }
  function showInputs() {
    var a = parseFloat(from.value) * 1e6, b = parseFloat(to.value) * 1e6;
    if (isFinite(a) && isFinite(b) && b > a) z.show(a, b);
  }
  var btn = document.getElementById('mg-show');
  if (btn && from && to) {
    btn.addEventListener('click', showInputs);
    [from, to].forEach(function (inp) {
      inp.addEventListener('keydown', function (ev) { if (ev.key === 'Enter') showInputs(); });
    });
  }
  var home = document.getElementById('mg-home');
  if (home) home.addEventListener('click', z.goHome);
  var all = document.getElementById('mg-all');
  if (all) all.addEventListener('click', z.whole);
  window.addEventListener('resize', size);
  size();
})();
