// A zoomable time axis shared by the report's canvases (the operation timeline and the
// message diagram): the wheel zooms around the pointer, dragging pans, a double-click goes
// back to the first view; time ticks and the nemesis' fault bands are drawn the same way in
// both. Times are microseconds since the run's start.
//
// sunderZoom(canvas, {left, lo, hi, home: [t0, t1], draw}) → z, where `left` is the x at
// which time begins (lane labels sit to its left), [lo, hi] how far one may pan and zoom
// out, `home` the first view, and `draw()` redraws the canvas from z.t0 .. z.t1. The caller
// sets z.W to the canvas' width before drawing.
function sunderZoom(cv, o) {
  var MIN_SPAN = 50;
  var lo = o.lo, hi = Math.max(o.hi, o.lo + 1);
  var z = { t0: o.home[0], t1: o.home[1], W: 800 };
  var drag = null;
  z.X = function (t) { return o.left + (t - z.t0) / (z.t1 - z.t0) * (z.W - o.left); };
  z.T = function (x) { return z.t0 + (x - o.left) / (z.W - o.left) * (z.t1 - z.t0); };
  function clamp() {
    var span = z.t1 - z.t0;
    if (!(span >= MIN_SPAN)) {
      var mid = (z.t0 + z.t1) / 2;
      span = MIN_SPAN; z.t0 = mid - span / 2; z.t1 = mid + span / 2;
    }
    if (span >= hi - lo) { z.t0 = lo; z.t1 = hi; return; }
    if (z.t0 < lo) { z.t0 = lo; z.t1 = lo + span; }
    if (z.t1 > hi) { z.t1 = hi; z.t0 = hi - span; }
  }
  z.show = function (a, b) { z.t0 = a; z.t1 = b; clamp(); o.draw(); };
  z.goHome = function () { z.show(o.home[0], o.home[1]); };
  z.whole = function () { z.show(lo, hi); };
  z.dragging = function () { return drag !== null; };
  clamp();
  cv.addEventListener('wheel', function (ev) {
    ev.preventDefault();
    var r = cv.getBoundingClientRect(), tm = z.T(ev.clientX - r.left), f = ev.deltaY > 0 ? 1.25 : 0.8;
    z.show(tm - (tm - z.t0) * f, tm + (z.t1 - tm) * f);
  }, { passive: false });
  cv.addEventListener('mousedown', function (ev) {
    drag = { x: ev.clientX, t0: z.t0, t1: z.t1 }; cv.style.cursor = 'grabbing';
  });
  window.addEventListener('mouseup', function () {
    if (drag) { drag = null; cv.style.cursor = 'grab'; }
  });
  window.addEventListener('mousemove', function (ev) {
    if (!drag) return;
    var dt = (ev.clientX - drag.x) / (z.W - o.left) * (drag.t1 - drag.t0);
    z.show(drag.t0 - dt, drag.t1 - dt);
  });
  cv.addEventListener('dblclick', z.goHome);
  // Vertical grid lines from y = top to bottom, their times printed above top.
  z.ticks = function (ctx, top, bottom) {
    ctx.fillStyle = '#667'; ctx.strokeStyle = '#eef';
    var span = z.t1 - z.t0, step = Math.pow(10, Math.floor(Math.log10(span / 8)));
    if (span / step > 20) step *= 5; else if (span / step > 10) step *= 2;
    for (var t = Math.ceil(z.t0 / step) * step; t <= z.t1; t += step) {
      var x = z.X(t);
      ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, bottom); ctx.stroke();
      ctx.fillText(sunderZoom.fmt(t), x + 2, top - 22);
    }
  };
  // Faults as translucent bands from just above top to bottom. A label is drawn only where
  // it does not run into the one before (faults every second would print over each other);
  // zooming in makes room, and the strip above the rows names the fault under the pointer.
  z.bands = function (ctx, bands, top, bottom) {
    var labelEnd = -Infinity;
    for (var b = 0; b < bands.length; b++) {
      var bx0 = Math.max(z.X(bands[b].from / 1000), o.left), bx1 = Math.min(z.X(bands[b].to / 1000), z.W);
      if (bx1 < o.left || bx0 > z.W) continue;
      ctx.fillStyle = sunderZoom.BAND[bands[b].kind] || 'rgba(120,120,140,.14)';
      ctx.fillRect(bx0, top - 9, Math.max(bx1 - bx0, 2), bottom - top + 9);
      var text = bands[b].kind + ' ' + bands[b].label;
      if (bx0 + 2 >= labelEnd + 6) {
        ctx.fillStyle = '#445';
        ctx.fillText(text, bx0 + 2, top - 11);
        labelEnd = bx0 + 2 + ctx.measureText(text).width;
      }
    }
  };
  return z;
}
sunderZoom.BAND = { partition: 'rgba(60,120,220,.28)', kill: 'rgba(220,60,60,.25)', pause: 'rgba(150,90,200,.28)' };
sunderZoom.fmt = function (us) {
  return us === 0 ? '0' : Math.abs(us) >= 1e6 ? (us / 1e6).toFixed(3) + 's' : (us / 1e3).toFixed(2) + 'ms';
};
// The faults in force at time t (µs), as tooltip lines.
sunderZoom.faultsAt = function (bands, t) {
  var out = [];
  for (var b = 0; b < bands.length; b++) {
    if (bands[b].from / 1000 <= t && t <= bands[b].to / 1000) {
      out.push(bands[b].kind + ' ' + bands[b].label + '  ' + sunderZoom.fmt(bands[b].from / 1000) + ' → ' + sunderZoom.fmt(bands[b].to / 1000));
    }
  }
  return out;
};
// Shows a tooltip element with `text` next to the pointer.
sunderZoom.tip = function (tip, ev, text) {
  tip.textContent = text;
  tip.style.display = 'block'; tip.style.left = (ev.clientX + 12) + 'px'; tip.style.top = (ev.clientY + 12) + 'px';
};
