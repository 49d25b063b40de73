// Draws the counterexample from the JSON in #sunder-data. No libraries, no network.
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('sunder-data').textContent);
  var timeline = document.getElementById('timeline');
  var svg = document.getElementById('svg');
  var NS = svg.namespaceURI; // the parser put <svg> in the SVG namespace for us
  var select = document.getElementById('partition');
  var hoverBox = document.getElementById('hover');
  var evidence = document.getElementById('evidence');
  var nothing = document.getElementById('nothing');
  var onlyRelevant = document.getElementById('only-relevant');
  var ROW = 22, BAR = 14, LEFT = 64, TOP = 30, RIGHT = 14;
  var cur = null;
  var view = { t0: 0, t1: 1 };
  var pinned = null;

  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function h(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }
  function show(v) {
    if (v === null || v === undefined) return 'nil';
    return JSON.stringify(v);
  }
  function fmtTime(ns) {
    var a = Math.abs(ns);
    if (a < 1e3) return ns.toFixed(0) + 'ns';
    if (a < 1e6) return (ns / 1e3).toFixed(a < 1e4 ? 2 : 1) + 'µs';
    if (a < 1e9) return (ns / 1e6).toFixed(a < 1e7 ? 3 : 1) + 'ms';
    return (ns / 1e9).toFixed(3) + 's';
  }
  // A tick label precise enough that neighbours (stepT apart) differ.
  function fmtTick(t, stepT) {
    var a = Math.max(Math.abs(t), stepT);
    var unit = a < 1e3 ? [1, 'ns'] : a < 1e6 ? [1e3, 'µs'] : a < 1e9 ? [1e6, 'ms'] : [1e9, 's'];
    var decimals = Math.min(Math.max(0, Math.ceil(-Math.log10(stepT / unit[0]) - 1e-9)), 9);
    return (t / unit[0]).toFixed(decimals) + unit[1];
  }
  function opText(op) {
    var out = op.kind === 'info' ? '?' : (op.output === null || show(op.output) === show(op.input) ? 'ok' : show(op.output));
    return op.f + (op.input === null ? '' : ' ' + show(op.input)) + ' → ' + out;
  }

  // ---- model of one partition -------------------------------------------------------
  function prepare(p) {
    var ops = p.ops, start = Infinity, end = -Infinity;
    ops.forEach(function (op) {
      start = Math.min(start, op.call);
      end = Math.max(end, op.ret === null ? op.call : op.ret);
    });
    if (!ops.length) { start = 0; end = 1; }
    var span = Math.max(end - start, 1);
    var openEnd = end + span * 0.04 + 1; // where info ops (never returned) are drawn to
    var procs = [];
    var seen = {};
    ops.forEach(function (op) {
      var k = String(op.process);
      if (!seen[k]) { seen[k] = true; procs.push(op.process); }
    });
    procs.sort(function (a, b) {
      if (typeof a === 'number' && typeof b === 'number') return a - b;
      return String(a) < String(b) ? -1 : 1;
    });
    var rowOf = {};
    procs.forEach(function (pr, i) { rowOf[String(pr)] = i; });
    var step = {}, stuck = {};
    var cx = p.counterexample;
    var lps = [];
    if (cx) {
      // Linearization points: the earliest instant each step can take effect given the
      // previous one (a valid prefix always has one inside each op's interval).
      var t = -Infinity;
      cx.longest_prefix.forEach(function (s, i) {
        var op = ops[s.op];
        step[s.op] = { n: i + 1, state: s.state };
        t = Math.max(t, op.call);
        var ret = op.ret === null ? openEnd : op.ret;
        if (t > ret) t = ret;
        lps.push({ t: t, op: s.op });
      });
      cx.stuck.forEach(function (a) { stuck[a.op] = a; });
    }
    var failT = lps.length ? lps[lps.length - 1].t : start;
    return { p: p, ops: ops, start: start, end: openEnd, procs: procs, rowOf: rowOf,
      step: step, stuck: stuck, lps: lps, failT: failT, bars: [], labels: [] };
  }

  // ---- drawing --------------------------------------------------------------------------
  function plotWidth() { return Math.max(timeline.clientWidth - LEFT - RIGHT, 200); }
  function x(t) { return (t - view.t0) / (view.t1 - view.t0) * plotWidth(); }

  function build(c) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    pinned = null;
    var H = TOP + c.procs.length * ROW + 8;
    svg.setAttribute('height', H);
    var defs = el('defs', {}, svg);
    var g = el('linearGradient', { id: 'infofade', x1: '0', x2: '1', y1: '0', y2: '0' }, defs);
    el('stop', { offset: '0', 'stop-color': '#e0a030', 'stop-opacity': '0.8' }, g);
    el('stop', { offset: '1', 'stop-color': '#e0a030', 'stop-opacity': '0.08' }, g);
    c.procs.forEach(function (pr, i) {
      var y = TOP + i * ROW;
      if (i % 2 === 0) el('rect', { class: 'stripe', x: 0, y: y, width: '100%', height: ROW }, svg);
      var t = el('text', { class: 'plabel', x: 6, y: y + ROW / 2 + 4 }, svg);
      t.textContent = typeof pr === 'number' ? 'p' + pr : String(pr);
    });
    c.axis = el('g', { class: 'axis' }, svg);
    // A nested svg clips the plot to its box.
    c.plot = el('svg', { x: LEFT, y: 0, height: H, overflow: 'hidden' }, svg);
    c.ops.forEach(function (op) {
      var y = TOP + c.rowOf[String(op.process)] * ROW + (ROW - BAR) / 2;
      var cls = 'bar ' + (c.stuck[op.id] ? 'stuck' : c.step[op.id] ? 'lin' : op.kind === 'info' ? 'info' : 'ok');
      if (op.kind === 'info') cls += ' open';
      var r = el('rect', { class: cls, y: y, height: BAR, rx: 2 }, c.plot);
      r.dataset.op = op.id;
      var label = el('text', { class: 'blabel' + (cls === 'bar info open' ? ' dark' : ''), y: y + BAR - 3 }, c.plot);
      var s = c.step[op.id];
      label.textContent = (s ? s.n + '. ' : c.stuck[op.id] ? '✗ ' : '') + opText(op);
      c.bars[op.id] = r;
      c.labels[op.id] = label;
    });
    c.path = el('polyline', { class: 'linpath' }, c.plot);
    c.dots = c.lps.map(function (lp) {
      return el('circle', { class: 'lpdot', r: 3, cy: TOP + c.rowOf[String(c.ops[lp.op].process)] * ROW + ROW / 2 }, c.plot);
    });
    if (c.p.counterexample) {
      c.fail = el('line', { class: 'failline', y1: TOP - 6, y2: H }, c.plot);
      c.failText = el('text', { class: 'failtext', y: TOP - 10 }, c.plot);
      c.failText.textContent = 'failing point: ' + Object.keys(c.stuck).length + ' op(s) cannot go next';
    }
    applyFilter();
  }

  function layout() {
    var c = cur;
    if (!c) return;
    var W = plotWidth();
    svg.setAttribute('width', W + LEFT + RIGHT);
    c.plot.setAttribute('width', W);
    c.ops.forEach(function (op) {
      var x0 = x(op.call), x1 = x(op.ret === null ? c.end : op.ret);
      var w = Math.max(x1 - x0, 2);
      var r = c.bars[op.id], t = c.labels[op.id];
      r.setAttribute('x', x0);
      r.setAttribute('width', w);
      var fits = w > 7 * t.textContent.length + 6 && x1 > 0 && x0 < W;
      // The ops that could not go next are the point of the page: label them even when
      // their bar is too narrow, just after it.
      var outside = !fits && c.stuck[op.id] !== undefined;
      t.setAttribute('display', fits || outside ? 'inline' : 'none');
      t.classList.toggle('outside', outside);
      if (fits) t.setAttribute('x', Math.max(x0, 0) + 4);
      else if (outside) t.setAttribute('x', x1 + 4);
    });
    var pts = c.lps.map(function (lp, i) {
      var px = x(lp.t), py = c.dots[i].getAttribute('cy');
      c.dots[i].setAttribute('cx', px);
      return px + ',' + py;
    });
    c.path.setAttribute('points', pts.join(' '));
    if (c.fail) {
      var fx = x(c.failT);
      c.fail.setAttribute('x1', fx);
      c.fail.setAttribute('x2', fx);
      c.failText.setAttribute('x', Math.min(fx + 4, W - 230));
    }
    drawAxis();
  }

  function drawAxis() {
    var axis = cur.axis;
    while (axis.firstChild) axis.removeChild(axis.firstChild);
    var span = view.t1 - view.t0;
    var raw = span / 8, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var stepT = [1, 2, 5, 10].map(function (m) { return m * mag; }).find(function (s) { return s >= raw; });
    var H = svg.getAttribute('height');
    for (var t = Math.ceil(view.t0 / stepT) * stepT; t <= view.t1; t += stepT) {
      var px = LEFT + x(t);
      el('line', { x1: px, x2: px, y1: TOP - 4, y2: H }, axis);
      var label = el('text', { x: px + 2, y: 12 }, axis);
      label.textContent = fmtTick(t, stepT);
    }
  }

  var pending = false;
  function redraw() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(function () { pending = false; layout(); });
  }

  // ---- zoom and pan ---------------------------------------------------------------------
  function zoomAt(factor, t) {
    var span = (view.t1 - view.t0) * factor;
    span = Math.max(span, 1);
    var f = (t - view.t0) / (view.t1 - view.t0);
    view = { t0: t - f * span, t1: t - f * span + span };
    redraw();
  }
  function fit() { view = { t0: cur.start, t1: cur.end }; redraw(); }
  function toFailure() {
    var c = cur, lo = c.failT, hi = c.failT;
    Object.keys(c.stuck).forEach(function (id) {
      var op = c.ops[id];
      lo = Math.min(lo, op.call);
      hi = Math.max(hi, op.ret === null ? c.end : op.ret);
    });
    c.lps.slice(-4).forEach(function (lp) { lo = Math.min(lo, c.ops[lp.op].call); });
    var pad = Math.max((hi - lo) * 0.15, 1);
    view = { t0: lo - pad, t1: hi + pad };
    redraw();
  }
  timeline.addEventListener('wheel', function (e) {
    if (!cur) return;
    e.preventDefault();
    var rect = timeline.getBoundingClientRect();
    var px = e.clientX - rect.left + timeline.scrollLeft - LEFT;
    var t = view.t0 + px / plotWidth() * (view.t1 - view.t0);
    zoomAt(Math.exp(e.deltaY * 0.0015), t);
  }, { passive: false });
  var drag = null;
  timeline.addEventListener('mousedown', function (e) {
    drag = { x: e.clientX, t0: view.t0, t1: view.t1, moved: false };
    timeline.classList.add('dragging');
  });
  window.addEventListener('mousemove', function (e) {
    if (!drag) return;
    var dx = e.clientX - drag.x;
    if (Math.abs(dx) > 2) drag.moved = true;
    var dt = dx / plotWidth() * (drag.t1 - drag.t0);
    view = { t0: drag.t0 - dt, t1: drag.t1 - dt };
    redraw();
  });
  window.addEventListener('mouseup', function () {
    timeline.classList.remove('dragging');
    setTimeout(function () { drag = null; }, 0);
  });
  document.getElementById('zoom-in').onclick = function () { zoomAt(0.5, (view.t0 + view.t1) / 2); };
  document.getElementById('zoom-out').onclick = function () { zoomAt(2, (view.t0 + view.t1) / 2); };
  document.getElementById('zoom-fit').onclick = fit;
  document.getElementById('zoom-fail').onclick = function () { if (cur) toFailure(); };
  window.addEventListener('resize', redraw);

  // ---- the info panel -------------------------------------------------------------------
  function describe(op) {
    var c = cur;
    hoverBox.textContent = '';
    hoverBox.appendChild(h('h2', 'operation #' + op.id));
    var dl = h('dl');
    function row(k, v, cls) { dl.appendChild(h('dt', k)); dl.appendChild(h('dd', v, cls)); }
    row('process', String(op.process));
    row('f', op.f);
    if (op.key !== undefined && op.key !== null) row('key', op.key);
    row('input', show(op.input));
    row('output', op.kind === 'info' ? '(unknown: info)' : show(op.output));
    row('kind', op.kind);
    row('call', fmtTime(op.call));
    row('return', op.ret === null ? 'never (open to the end)' : fmtTime(op.ret));
    row('history', 'invoke #' + op.invoke_index + (op.complete_index === null ? '' : ', completion #' + op.complete_index));
    var s = c.step[op.id];
    if (s) { row('linearized', 'step ' + s.n); row('state after', s.state); }
    var a = c.stuck[op.id];
    if (a) { row('met state', a.state, 'reason'); row('why not', a.reason, 'reason'); }
    hoverBox.appendChild(dl);
  }
  function selectOp(id, scroll) {
    if (pinned !== null && cur.bars[pinned]) cur.bars[pinned].classList.remove('sel');
    pinned = id;
    var r = cur.bars[id];
    r.classList.add('sel');
    describe(cur.ops[id]);
    if (scroll) {
      var op = cur.ops[id];
      var span = view.t1 - view.t0;
      if (op.call < view.t0 || op.call > view.t1) { view = { t0: op.call - span / 3, t1: op.call + span * 2 / 3 }; redraw(); }
      var y = Number(r.getAttribute('y'));
      if (y < timeline.scrollTop || y > timeline.scrollTop + timeline.clientHeight - ROW) timeline.scrollTop = y - 60;
    }
  }
  svg.addEventListener('mouseover', function (e) {
    var id = e.target.dataset && e.target.dataset.op;
    if (id !== undefined && pinned === null) describe(cur.ops[id]);
  });
  svg.addEventListener('click', function (e) {
    if (drag && drag.moved) return;
    var id = e.target.dataset && e.target.dataset.op;
    if (id !== undefined) selectOp(Number(id), false);
    else if (pinned !== null) { cur.bars[pinned].classList.remove('sel'); pinned = null; }
  });

  function applyFilter() {
    var only = onlyRelevant.checked;
    cur.ops.forEach(function (op) {
      var relevant = cur.step[op.id] || cur.stuck[op.id];
      cur.bars[op.id].classList.toggle('faded', only && !relevant);
    });
  }
  onlyRelevant.addEventListener('change', function () { if (cur) applyFilter(); });

  function fillEvidence(c) {
    evidence.textContent = '';
    var p = c.p, cx = p.counterexample;
    evidence.appendChild(h('h2', (p.key === undefined || p.key === null ? 'the register' : 'key ' + show(p.key)) + ': ' + p.verdict));
    evidence.appendChild(h('p', p.ops.length + ' ops, ' + p.explored + ' search states explored', 'hint'));
    if (!cx) return;
    evidence.appendChild(h('h2', 'longest linearizable prefix (' + cx.longest_prefix.length + ' steps)'));
    var box = h('div', undefined, 'steps');
    var table = h('table');
    function line(cells, id, cls) {
      var tr = h('tr', undefined, cls);
      cells.forEach(function (t, i) { tr.appendChild(h('td', t, i === cells.length - 1 && cls ? 'reason' : undefined)); });
      tr.onclick = function () { selectOp(id, true); };
      table.appendChild(tr);
    }
    cx.longest_prefix.forEach(function (s, i) { line([String(i + 1), 'p' + c.ops[s.op].process + ' ' + opText(c.ops[s.op]), '→ ' + s.state], s.op); });
    box.appendChild(table);
    evidence.appendChild(box);
    box.scrollTop = box.scrollHeight;
    evidence.appendChild(h('p', 'state after the prefix: ' + cx.state));
    evidence.appendChild(h('h2', 'could not be placed next', 'reason'));
    var box2 = h('div', undefined, 'steps');
    table = h('table');
    cx.stuck.forEach(function (a) { line(['p' + c.ops[a.op].process + ' ' + opText(c.ops[a.op]), 'met ' + a.state + ': ' + a.reason], a.op, 'stuck'); });
    box2.appendChild(table);
    evidence.appendChild(box2);
  }

  // ---- partitions -----------------------------------------------------------------------
  function choose(i) {
    var p = data.partitions[i];
    cur = prepare(p);
    build(cur);
    fillEvidence(cur);
    hoverBox.innerHTML = '<h2>operation</h2><p class="hint">hover or click a bar</p>';
    if (p.counterexample) toFailure(); else fit();
    layout();
  }
  if (!data.partitions.length) {
    nothing.textContent = data.verdict === 'valid'
      ? 'Every partition is linearizable: there is no counterexample to draw.'
      : 'No partition to draw (' + data.summary + ').';
    select.disabled = true;
    return;
  }
  nothing.style.display = 'none';
  data.partitions.forEach(function (p, i) {
    var o = document.createElement('option');
    o.value = i;
    o.textContent = (p.key === undefined || p.key === null ? 'register' : 'key ' + show(p.key)) + ' — ' + p.verdict + ' (' + p.ops.length + ' ops)';
    select.appendChild(o);
  });
  select.onchange = function () { choose(Number(select.value)); };
  choose(0);
})();
