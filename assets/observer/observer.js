// nevil observer: renders the `/events` stream (Server-Sent Events) of a running robot,
// or, chosen in the robot selector, another robot of its fleet (`/fleet/<id>/tree` and
// `/fleet/<id>/events`, polled once a second, read-only: controls are only offered for the
// robot serving the page). Plain script, no framework, no build step. Everything from the server is untrusted text:
// it is set with textContent or setAttribute, never parsed as HTML.
'use strict';

(() => {
  const SVG = 'http://www.w3.org/2000/svg';
  const TIMELINE_CAP = 300;
  const SPARK_POINTS = 60;
  const RESOURCES = [
    { key: 'cpu', label: 'CPU', unit: 'cores', fmt: (v) => v.toFixed(3) },
    { key: 'memory', label: 'memory', unit: '', fmt: bytes },
    { key: 'mailbox', label: 'mailbox', unit: 'msgs', fmt: (v) => String(Math.round(v)) },
    { key: 'rate', label: 'message rate', unit: 'msg/s', fmt: (v) => v.toFixed(1) },
  ];

  const $ = (id) => document.getElementById(id);

  /** An element with a class and text (text set as text, never as HTML). */
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function svgEl(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    return e;
  }

  /** Sets text only when it changed (so unchanged rows cost nothing). */
  function setText(e, text) {
    const t = text === null || text === undefined ? '' : String(text);
    if (e.textContent !== t) e.textContent = t;
  }

  function setAttr(e, name, value) {
    const v = String(value);
    if (e.getAttribute(name) !== v) e.setAttribute(name, v);
  }

  function bytes(n) {
    if (n === null || n === undefined) return '–';
    const units = ['B', 'KiB', 'MiB', 'GiB'];
    let v = n;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i += 1;
    }
    return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
  }

  function duration(s) {
    if (typeof s !== 'number') return '–';
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const sec = s % 60;
    if (h > 0) return `${h}h ${m}m`;
    if (m > 0) return `${m}m ${Math.floor(sec)}s`;
    return `${sec.toFixed(1)} s`;
  }

  function seconds(s) {
    if (typeof s !== 'number') return '–';
    if (s < 1e-3) return `${(s * 1e6).toFixed(0)} µs`;
    if (s < 1) return `${(s * 1e3).toFixed(2)} ms`;
    return `${s.toFixed(2)} s`;
  }

  function clock(ms) {
    const d = new Date(ms);
    const p = (n, w) => String(n).padStart(w, '0');
    return `${p(d.getHours(), 2)}:${p(d.getMinutes(), 2)}:${p(d.getSeconds(), 2)}.${p(d.getMilliseconds(), 3)}`;
  }

  // ---------------------------------------------------------------- state

  const ui = {
    state: null, // the latest `state` event
    nodes: new Map(), // path -> Node (latest tree, flattened)
    parents: new Map(), // path -> parent path
    prev: new Map(), // path -> {t, cpu, msgs} from the previous state (for rates)
    rates: new Map(), // path -> {cpu, rate} computed from deltas
    rows: new Map(), // path -> rendered row entry
    expanded: new Map(), // path -> bool, the user's choice (survives re-rendering)
    selected: null,
    filter: '',
    search: '',
    matches: [],
    matchIndex: -1,
    spark: new Map(), // resource key -> [values] for the selected actor
    worldKey: null,
    controls: false,
    self: null, // the id of the robot serving the page (from /fleet)
    viewing: null, // another robot's id while it is shown; null: the live local view
    fleet: [], // the latest /fleet list
  };

  // ---------------------------------------------------------------- tree

  /** Flattens the tree into ui.nodes / ui.parents and computes rates from deltas. */
  function index(root, tMs) {
    ui.nodes = new Map();
    ui.parents = new Map();
    const walk = (n, parent) => {
      ui.nodes.set(n.path, n);
      if (parent) ui.parents.set(n.path, parent);
      for (const c of n.children || []) walk(c, n.path);
    };
    if (root) walk(root, null);
    const prev = ui.prev;
    ui.prev = new Map();
    for (const [path, n] of ui.nodes) {
      const now = { t: tMs, cpu: n.cpu_seconds, msgs: n.messages_handled };
      ui.prev.set(path, now);
      const p = prev.get(path);
      if (p && now.t > p.t) {
        const dt = (now.t - p.t) / 1000;
        ui.rates.set(path, {
          cpu: Math.max(0, (now.cpu - p.cpu) / dt),
          rate: Math.max(0, (now.msgs - p.msgs) / dt),
        });
      }
    }
    for (const path of ui.rates.keys()) if (!ui.nodes.has(path)) ui.rates.delete(path);
  }

  /** Paths that must be shown: everything, or (filtering) the matches and their ancestors. */
  function visibleSet() {
    if (!ui.filter) return null;
    const keep = new Set();
    for (const path of ui.nodes.keys()) {
      if (path.toLowerCase().includes(ui.filter)) {
        let p = path;
        while (p && !keep.has(p)) {
          keep.add(p);
          p = ui.parents.get(p);
        }
      }
    }
    return keep;
  }

  function isExpanded(node, depth, visible) {
    if (visible) return true; // filtering: the matches' ancestors are open
    const choice = ui.expanded.get(node.path);
    if (choice !== undefined) return choice;
    return depth < 3 && (node.children || []).length <= 40;
  }

  function makeRow(node) {
    const wrap = el('div', 'node');
    wrap.setAttribute('role', 'treeitem');
    const row = el('div', 'row');
    row.dataset.path = node.path;
    row.tabIndex = -1;
    const cells = {
      toggle: el('span', 'toggle'),
      name: el('span', 'name'),
      status: el('span', 'status'),
      quota: el('span', 'quota'),
      restarts: el('span', 'restarts num'),
      mailbox: el('span', 'mailbox num'),
      where: el('span', 'where'),
      exit: el('span', 'exit'),
    };
    const first = el('span', 'first');
    first.append(cells.toggle, cells.name);
    row.append(first, cells.status, cells.quota, cells.restarts, cells.mailbox, cells.where, cells.exit);
    const kids = el('div', 'children');
    kids.setAttribute('role', 'group');
    wrap.append(row, kids);
    return { wrap, row, kids, cells, first, depth: -1 };
  }

  function updateRow(entry, node, depth, open, tMs) {
    const { row, cells } = entry;
    if (entry.depth !== depth) {
      entry.depth = depth;
      entry.first.style.paddingLeft = `${depth * 14}px`;
    }
    const hasKids = (node.children || []).length > 0;
    setText(cells.toggle, hasKids ? (open ? '▾' : '▸') : '·');
    setAttr(row, 'data-kind', node.kind);
    setText(cells.name, node.name || node.path);
    setAttr(row, 'title', node.path);
    setAttr(row, 'data-status', node.status);
    setText(cells.status, node.status);
    const q = node.quota ? node.quota.state : 'none';
    setAttr(row, 'data-quota', q);
    setText(cells.quota, node.quota ? `${q} · ${node.quota.group}` : '');
    if (row.dataset.restarts !== String(node.restarts)) {
      if (row.dataset.restarts !== undefined) row.dataset.restartsAt = String(tMs);
      row.dataset.restarts = String(node.restarts);
    }
    setText(cells.restarts, node.restarts > 0 ? `↻${node.restarts}` : '0');
    setText(cells.mailbox, node.mailbox_depth);
    let where = node.kind === 'supervisor' ? (node.strategy || '') : '';
    if (node.placement === 'process') where += `${where ? ' · ' : ''}pid ${node.pid}${node.isolation ? ` (${node.isolation})` : ''}`;
    setText(cells.where, where);
    setText(cells.exit, node.last_exit || '');
    setAttr(row, 'data-selected', ui.selected === node.path ? 'true' : 'false');
    setAttr(row, 'data-match', ui.search && node.path.toLowerCase().includes(ui.search) ? 'true' : 'false');
    setAttr(entry.wrap, 'aria-expanded', hasKids ? String(open) : 'false');
  }

  /** Drops a subtree's rows from the DOM and the index (collapsed: its children are not rendered). */
  function forget(entry) {
    for (const child of entry.kids.children) {
      const path = child.firstChild && child.firstChild.dataset.path;
      const e = path && ui.rows.get(path);
      if (e) {
        forget(e);
        ui.rows.delete(path);
      }
    }
    entry.kids.replaceChildren();
  }

  /** Reconciles `container`'s rows with `children` in place, keyed by path. */
  function renderChildren(container, children, depth, visible, tMs) {
    let i = 0;
    const keep = new Set();
    for (const node of children) {
      if (visible && !visible.has(node.path)) continue;
      keep.add(node.path);
      let entry = ui.rows.get(node.path);
      if (!entry) {
        entry = makeRow(node);
        ui.rows.set(node.path, entry);
      }
      if (container.children[i] !== entry.wrap) container.insertBefore(entry.wrap, container.children[i] || null);
      i += 1;
      const open = isExpanded(node, depth, visible) && (node.children || []).length > 0;
      updateRow(entry, node, depth, open, tMs);
      if (open) renderChildren(entry.kids, node.children, depth + 1, visible, tMs);
      else if (entry.kids.firstChild) forget(entry);
    }
    // Rows no longer in the tree (or filtered out).
    while (container.children.length > i) {
      const wrap = container.lastChild;
      const path = wrap.firstChild && wrap.firstChild.dataset.path;
      const e = path && ui.rows.get(path);
      if (e && !keep.has(path)) {
        forget(e);
        ui.rows.delete(path);
      }
      wrap.remove();
    }
  }

  function renderTree() {
    const st = ui.state;
    if (!st || !st.tree) return;
    const root = st.tree.root;
    renderChildren($('tree'), root ? [root] : [], 0, visibleSet(), st.t_ms);
  }

  function toggle(path) {
    const node = ui.nodes.get(path);
    if (!node || !(node.children || []).length) return;
    const entry = ui.rows.get(path);
    const open = entry ? entry.cells.toggle.textContent === '▾' : false;
    ui.expanded.set(path, !open);
    renderTree();
  }

  function select(path) {
    ui.selected = path;
    ui.spark = new Map();
    for (const [p, e] of ui.rows) setAttr(e.row, 'data-selected', p === path ? 'true' : 'false');
    renderDetail();
  }

  /** Opens every ancestor of `path` (the user's state, so it stays open). */
  function reveal(path) {
    let p = ui.parents.get(path);
    while (p) {
      ui.expanded.set(p, true);
      p = ui.parents.get(p);
    }
  }

  /**
   * Recomputes the search's matches. `jump`: 'first' (the term changed), 'next' (Enter), or
   * null (a live update: the count follows, the view and the selection stay where they are).
   */
  function runSearch(jump) {
    const term = ui.search;
    if (!term) {
      ui.matches = [];
      ui.matchIndex = -1;
      setText($('search-count'), '');
      if (jump) renderTree();
      return;
    }
    const current = ui.matches[ui.matchIndex];
    ui.matches = [...ui.nodes.keys()].filter((p) => p.toLowerCase().includes(term));
    ui.matchIndex = Math.max(ui.matches.indexOf(current), -1);
    if (jump === 'first') {
      for (const p of ui.matches.slice(0, 200)) reveal(p);
      ui.matchIndex = ui.matches.length ? 0 : -1;
    } else if (jump === 'next' && ui.matches.length) {
      ui.matchIndex = (ui.matchIndex + 1) % ui.matches.length;
    }
    setText($('search-count'), ui.matches.length ? `${ui.matchIndex + 1}/${ui.matches.length}` : 'no match');
    if (!jump) return;
    const target = ui.matches[ui.matchIndex];
    if (target) reveal(target);
    renderTree();
    if (!target) return;
    const entry = ui.rows.get(target);
    if (entry) entry.row.scrollIntoView({ block: 'nearest' });
    select(target);
  }

  // ---------------------------------------------------------------- header

  function renderHeader() {
    const st = ui.state;
    const tree = st.tree || {};
    setText($('pid'), tree.pid);
    setText($('uptime'), duration(tree.uptime_s));
    setText($('generation'), tree.config_generation);
    setText($('actor-count'), ui.nodes.size);
    const estop = (st.robot && st.robot.estop) || null;
    const box = $('estop');
    if (!estop) {
      setAttr(box, 'data-engaged', 'unknown');
      setText($('estop-state'), 'unknown');
      setText($('estop-reasons'), '');
    } else {
      setAttr(box, 'data-engaged', estop.engaged ? 'true' : 'false');
      setText($('estop-state'), estop.engaged ? 'ENGAGED' : 'released');
      setText($('estop-reasons'), estop.engaged ? estop.reasons || '' : '');
    }
    renderControlsSlot();
  }

  // ---------------------------------------------------------------- controls

  function token() {
    try {
      return sessionStorage.getItem('nevil-token') || '';
    } catch (_) {
      return '';
    }
  }

  /** The token field exists only while the server offers controls. */
  function renderControlsSlot() {
    const want = !!ui.state.controls;
    if (want === ui.controls) return;
    ui.controls = want;
    const slot = $('controls-slot');
    slot.replaceChildren();
    if (want) {
      const label = el('label', 'token', 'control token ');
      const input = el('input');
      input.id = 'controls-token';
      input.type = 'password';
      input.autocomplete = 'off';
      input.placeholder = 'token for restart/suspend/resume';
      input.value = token();
      input.addEventListener('input', () => {
        try {
          sessionStorage.setItem('nevil-token', input.value);
        } catch (_) {
          /* storage refused: the field still holds it */
        }
      });
      label.append(input);
      slot.append(label);
    }
    detail.built = null; // rebuild the detail panel with (or without) its buttons
    renderDetail();
  }

  async function control(path, action) {
    const out = $('control-result');
    const field = $('controls-token');
    const tok = field ? field.value : token();
    setAttr(out, 'data-outcome', 'pending');
    setText(out, `${action} ${path}…`);
    const url = `/actors/${path.split('/').map(encodeURIComponent).join('/')}/${action}`;
    try {
      const res = await fetch(url, { method: 'POST', headers: { Authorization: `Bearer ${tok}` } });
      let body = null;
      try {
        body = await res.json();
      } catch (_) {
        body = null;
      }
      if (res.ok && body && body.ok) {
        setAttr(out, 'data-outcome', 'ok');
        setText(out, `ok: ${body.message || `${action} ${path}`}`);
      } else {
        setAttr(out, 'data-outcome', 'error');
        setText(out, `${res.status}: ${(body && body.error) || res.statusText}`);
      }
    } catch (e) {
      setAttr(out, 'data-outcome', 'error');
      setText(out, `request failed: ${e.message}`);
    }
  }

  // ---------------------------------------------------------------- detail

  const detail = { built: null, parts: null };

  function buildDetail() {
    const root = $('detail');
    root.replaceChildren();
    const parts = { bars: {} };
    const facts = el('dl', 'facts detail-facts');
    for (const [key, label] of [
      ['kind', 'kind'], ['status', 'status'], ['group', 'quota group'], ['qstate', 'quota state'],
      ['restarts', 'restarts'], ['handled', 'messages'], ['where', 'placement'], ['exit', 'last exit'],
    ]) {
      facts.append(el('dt', null, label));
      parts[key] = el('dd');
      parts[key].id = `detail-${key}`;
      facts.append(parts[key]);
    }
    root.append(facts);
    for (const r of RESOURCES) {
      const box = el('div', 'meter');
      box.dataset.resource = r.key;
      const head = el('div', 'meter-head');
      const name = el('span', 'meter-name', r.label);
      const value = el('span', 'meter-value');
      head.append(name, value);
      const track = el('div', 'meter-track');
      const fill = el('div', 'meter-fill');
      const marks = {};
      track.append(fill);
      for (const m of ['soft', 'burst', 'hard']) {
        marks[m] = el('div', `mark mark-${m}`);
        marks[m].title = m;
        track.append(marks[m]);
      }
      const spark = svgEl('svg', { class: 'spark', viewBox: `0 0 ${SPARK_POINTS - 1} 20`, preserveAspectRatio: 'none' });
      const line = svgEl('polyline', { points: '' });
      spark.append(line);
      box.append(head, track, spark);
      root.append(box);
      parts.bars[r.key] = { box, value, fill, marks, line };
    }
    parts.enforcements = el('div', 'enforcements');
    root.append(parts.enforcements);
    if (ui.controls) {
      const bar = el('div', 'actions');
      for (const action of ['restart', 'suspend', 'resume']) {
        const b = el('button', `action action-${action}`, action);
        b.type = 'button';
        b.dataset.action = action;
        b.addEventListener('click', () => {
          if (ui.selected) control(ui.selected, action);
        });
        bar.append(b);
      }
      const out = el('output', 'control-result');
      out.id = 'control-result';
      bar.append(out);
      root.append(bar);
    }
    detail.parts = parts;
    detail.built = ui.selected;
  }

  function renderDetail() {
    const path = ui.selected;
    const node = path ? ui.nodes.get(path) : null;
    setText($('detail-path'), path || '(click a row)');
    if (!node) {
      if (path && ui.state) setText($('detail-path'), `${path} (gone)`);
      if (!path) {
        $('detail').replaceChildren();
        detail.built = null;
      }
      return;
    }
    if (detail.built !== path || !detail.parts) buildDetail();
    const p = detail.parts;
    const q = node.quota;
    setText(p.kind, node.kind + (node.strategy ? ` (${node.strategy})` : ''));
    setText(p.status, node.status);
    setAttr(p.status, 'data-status', node.status);
    setText(p.group, q ? q.group : 'not governed');
    setText(p.qstate, q ? q.state : '–');
    setAttr(p.qstate, 'data-quota', q ? q.state : 'none');
    setText(p.restarts, node.restarts);
    setText(p.handled, node.messages_handled);
    setText(p.where, node.placement === 'process' ? `process pid ${node.pid}${node.isolation ? `, ${node.isolation}` : ''}` : 'in process');
    setText(p.exit, node.last_exit || '–');
    const usage = (q && q.usage) || null;
    const rates = ui.rates.get(path) || {};
    const values = {
      cpu: usage ? usage.cpu : rates.cpu,
      memory: usage ? usage.memory : node.memory_bytes,
      mailbox: usage ? usage.mailbox : node.mailbox_depth,
      rate: usage ? usage.rate : rates.rate,
    };
    for (const r of RESOURCES) {
      const bar = p.bars[r.key];
      const v = values[r.key];
      const lim = (q && q.limits && q.limits[r.key]) || null;
      const hist = ui.spark.get(r.key) || [];
      if (typeof v === 'number') {
        hist.push(v);
        if (hist.length > SPARK_POINTS) hist.shift();
      }
      ui.spark.set(r.key, hist);
      const top = Math.max(lim ? lim.hard * 1.15 : 0, ...hist, 1e-9) * (lim ? 1 : 1.2);
      const pct = (x) => `${Math.min(100, Math.max(0, (x / top) * 100)).toFixed(2)}%`;
      bar.fill.style.width = typeof v === 'number' ? pct(v) : '0%';
      let level = 'ok';
      if (lim && typeof v === 'number') {
        if (v >= lim.hard) level = 'hard';
        else if (v >= lim.burst) level = 'burst';
        else if (v >= lim.soft) level = 'soft';
      }
      setAttr(bar.box, 'data-level', level);
      for (const m of ['soft', 'burst', 'hard']) {
        const mark = bar.marks[m];
        if (lim) {
          mark.hidden = false;
          mark.style.left = pct(lim[m]);
          mark.title = `${m} ${r.fmt(lim[m])}`;
        } else mark.hidden = true;
      }
      const limText = lim ? ` / soft ${r.fmt(lim.soft)} · burst ${r.fmt(lim.burst)} · hard ${r.fmt(lim.hard)}` : ' (no limit)';
      setText(bar.value, `${typeof v === 'number' ? r.fmt(v) : '–'} ${r.unit}${limText}`);
      const n = hist.length;
      const pts = hist.map((x, i) => `${SPARK_POINTS - n + i},${(20 - (x / top) * 20).toFixed(2)}`).join(' ');
      setAttr(bar.line, 'points', pts);
    }
    const by = (q && q.enforcements_by_action) || {};
    const parts = Object.entries(by).filter(([, n]) => n > 0).map(([a, n]) => `${a} ${n}`);
    setText(p.enforcements, q ? `enforcements: ${q.enforcements_total}${parts.length ? ` (${parts.join(', ')})` : ''}` : '');
  }

  // ---------------------------------------------------------------- robot

  function renderJitter(j) {
    const svg = $('jitter');
    svg.replaceChildren();
    if (ui.viewing) {
      setText($('jitter-summary'), 'shown only for the robot serving this page');
      return;
    }
    if (!j || !j.buckets || !j.buckets.length) {
      setText($('jitter-summary'), j ? `${j.ticks} ticks, no samples` : 'no data');
      return;
    }
    setText($('jitter-summary'), `${j.ticks} ticks · p50 ${seconds(j.p50_s)} · p99 ${seconds(j.p99_s)} · max ${seconds(j.max_s)}`);
    const W = 400;
    const H = 120;
    const B = 14; // axis band at the bottom
    const lo = Math.log10(Math.max(1e-7, j.buckets[0].le_s / 1.05));
    const hi = Math.log10(Math.max(j.buckets[j.buckets.length - 1].le_s, j.max_s || 0) * 1.1);
    const x = (s) => ((Math.log10(Math.max(s, 1e-9)) - lo) / (hi - lo || 1)) * W;
    const max = Math.max(...j.buckets.map((b) => b.count));
    let prevEdge = j.buckets[0].le_s / 1.05;
    for (const b of j.buckets) {
      const x0 = x(Math.max(prevEdge, b.le_s / 1.05));
      const x1 = x(b.le_s);
      const h = (b.count / max) * (H - B - 14);
      const rect = svgEl('rect', { class: 'bar', x: x0.toFixed(2), y: (H - B - h).toFixed(2), width: Math.max(1, x1 - x0).toFixed(2), height: h.toFixed(2) });
      const t = svgEl('title');
      t.textContent = `≤ ${seconds(b.le_s)}: ${b.count}`;
      rect.append(t);
      svg.append(rect);
      prevEdge = b.le_s;
    }
    let lastLabel = -Infinity;
    let row = 0;
    for (const [name, v] of [['p50', j.p50_s], ['p99', j.p99_s], ['max', j.max_s]]) {
      if (typeof v !== 'number') continue;
      const xv = x(v).toFixed(2);
      // Labels closer than their width go on a second line.
      row = x(v) - lastLabel < 24 ? row + 1 : 0;
      lastLabel = x(v);
      svg.append(svgEl('line', { class: `q q-${name}`, x1: xv, x2: xv, y1: 10, y2: H - B }));
      const label = svgEl('text', { class: `q-label q-${name}`, x: Math.min(W - 10, Math.max(10, x(v))).toFixed(2), y: 9 + row * 10 });
      label.textContent = name;
      svg.append(label);
    }
    // Decade ticks along the log axis.
    for (let d = Math.ceil(lo); d <= Math.floor(hi); d += 1) {
      const xv = x(10 ** d).toFixed(2);
      svg.append(svgEl('line', { class: 'tick', x1: xv, x2: xv, y1: H - B, y2: H - B + 3 }));
      const label = svgEl('text', { class: 'tick-label', x: Math.min(W - 20, Math.max(20, x(10 ** d))).toFixed(2), y: H - 2 });
      label.textContent = seconds(10 ** d);
      svg.append(label);
    }
  }

  /** A filesystem's share used, in percent (the sample has its total and what is available). */
  function diskUsed(d) {
    const used = typeof d.used_bytes === 'number' ? d.used_bytes : d.total_bytes - d.available_bytes;
    return ((used / d.total_bytes) * 100).toFixed(0);
  }

  function renderHost(host) {
    const box = $('host');
    box.replaceChildren();
    if (ui.viewing) {
      box.append(el('p', 'muted', `not shown for ${ui.viewing}: its tree, events and health only`));
      setText($('pressure'), '');
      return;
    }
    if (!host) {
      box.append(el('p', 'muted', 'no host sample yet (the system monitor samples once per period)'));
      setText($('pressure'), '');
      return;
    }
    const s = host.sample || {};
    const lv = host.levels || {};
    const temps = s.temperatures || [];
    const hottest = temps.length ? temps.reduce((a, b) => (b.celsius > a.celsius ? b : a)) : null;
    const disk = s.disk || null;
    const items = [
      ['cpu', 'CPU', typeof s.cpu_ratio === 'number' ? `${(s.cpu_ratio * 100).toFixed(0)} %` : '–'],
      ['memory', 'memory', s.memory ? `${bytes(s.memory.used_bytes)} / ${bytes(s.memory.total_bytes)}` : '–'],
      ['temperature', 'temperature', hottest ? `${hottest.celsius.toFixed(1)} °C (${hottest.sensor || hottest.label})` : 'no sensor'],
      ['disk', 'disk', disk && disk.total_bytes ? `${diskUsed(disk)} % used${disk.mount ? ` (${disk.mount})` : ''}` : '–'],
    ];
    for (const [key, label, value] of items) {
      const cell = el('div', 'level');
      cell.dataset.level = lv[key] || 'ok';
      cell.dataset.resource = key;
      cell.append(el('span', 'level-name', label), el('span', 'level-value', value), el('span', 'level-state', lv[key] || 'ok'));
      box.append(cell);
    }
    setText($('pressure'), `pressure ${host.pressure || 'normal'}`);
    setAttr($('pressure'), 'data-pressure', host.pressure || 'normal');
  }

  function renderAnalytics(a) {
    const risk = $('risk');
    risk.replaceChildren();
    const list = ((a && a.risk) || []).slice().sort((x, y) => y.score - x.score).slice(0, 8);
    if (!list.length) risk.append(el('p', 'muted', 'no errors seen: no risk'));
    const top = Math.max(1e-9, ...list.map((r) => r.score));
    for (const r of list) {
      const path = r.path || r.actor || '?';
      const row = el('div', 'risk-row');
      row.dataset.path = path;
      const fill = el('div', 'risk-fill');
      fill.style.width = `${((r.score / top) * 100).toFixed(1)}%`;
      const track = el('div', 'risk-track');
      track.append(fill);
      row.append(el('span', 'risk-path', path), track, el('span', 'risk-score', r.score.toFixed(2)));
      row.addEventListener('click', () => {
        reveal(path);
        renderTree();
        select(path);
      });
      risk.append(row);
    }
    const pats = $('patterns');
    pats.replaceChildren();
    const patterns = (a && a.patterns) || [];
    if (!patterns.length) pats.append(el('li', 'muted', 'no repeating pattern'));
    for (const p of patterns.slice(0, 10)) {
      const li = el('li');
      li.append(el('span', 'count', `×${p.occurrences}`), el('span', 'path', p.path), el('span', 'msg', `${p.kind}: ${p.message}`));
      pats.append(li);
    }
  }

  // ---------------------------------------------------------------- world

  function renderWorld(sim) {
    const panel = $('world-panel');
    if (!sim) {
      panel.hidden = true;
      return;
    }
    panel.hidden = false;
    const svg = $('world');
    const W = sim.room.width_m;
    const H = sim.room.height_m;
    const key = JSON.stringify([sim.room, sim.obstacles, sim.line]);
    if (ui.worldKey !== key) {
      ui.worldKey = key;
      svg.replaceChildren();
      svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
      const g = svgEl('g', { transform: `translate(0 ${H}) scale(1 -1)`, id: 'world-root' });
      g.append(svgEl('rect', { class: 'room', x: 0, y: 0, width: W, height: H }));
      const l = sim.line;
      if (l) {
        g.append(svgEl('rect', {
          class: 'track',
          x: l.centre_x_m - l.width_m / 2,
          y: l.centre_y_m - l.height_m / 2,
          width: l.width_m,
          height: l.height_m,
          rx: l.corner_radius_m,
          ry: l.corner_radius_m,
          'stroke-width': l.line_width_m,
        }));
      }
      // Obstacles as the sim's config spells them (radius_m, size_x_m/size_y_m), or short.
      for (const o of sim.obstacles || []) {
        if (o.kind === 'circle') {
          g.append(svgEl('circle', { class: 'obstacle', cx: o.x_m, cy: o.y_m, r: o.radius_m ?? o.r_m }));
        } else {
          const w = o.size_x_m ?? o.w_m;
          const h = o.size_y_m ?? o.h_m;
          g.append(svgEl('rect', { class: 'obstacle', x: o.x_m - w / 2, y: o.y_m - h / 2, width: w, height: h }));
        }
      }
      g.append(svgEl('polyline', { class: 'trail', id: 'world-trail', points: '', 'stroke-width': Math.max(W, H) / 250 }));
      const s = Math.max(W, H) / 40;
      const car = svgEl('polygon', { class: 'car', id: 'world-car', points: `${s},0 ${-s * 0.7},${s * 0.6} ${-s * 0.4},0 ${-s * 0.7},${-s * 0.6}` });
      g.append(car);
      svg.append(g);
    }
    const trail = $('world-trail');
    setAttr(trail, 'points', (sim.trail || []).map(([x, y]) => `${x.toFixed(3)},${y.toFixed(3)}`).join(' '));
    const pose = sim.pose;
    if (pose) setAttr($('world-car'), 'transform', `translate(${pose.x_m} ${pose.y_m}) rotate(${pose.heading_deg})`);
    const stats = [];
    if (pose) stats.push(`x ${pose.x_m.toFixed(2)} m, y ${pose.y_m.toFixed(2)} m, heading ${pose.heading_deg.toFixed(0)}°`);
    if (typeof sim.speed_m_s === 'number') stats.push(`speed ${sim.speed_m_s.toFixed(2)} m/s`);
    if (typeof sim.distance_m === 'number') stats.push(`distance ${sim.distance_m.toFixed(1)} m`);
    if (typeof sim.battery_v === 'number') stats.push(`battery ${sim.battery_v.toFixed(2)} V`);
    if (typeof sim.collisions === 'number') stats.push(`collisions ${sim.collisions}`);
    setText($('world-stats'), stats.join(' · '));
  }

  // ---------------------------------------------------------------- timeline

  const KIND_ICON = { quota: '⚖', exit: '✖', restart: '↻', escalation: '⇑', estop: '■', config: '⚙', control: '▶' };

  function describe(e) {
    switch (e.kind) {
      case 'quota':
        return [e.path, `${e.action}${e.factor !== undefined && e.factor !== null ? ` ×${e.factor}` : ''}${e.to ? ` ${e.to}` : ''}: ${e.resource} ${fmtNum(e.usage)} vs ${fmtNum(e.limit)}`];
      case 'exit':
        return [e.path, `${e.reason}${e.restart ? ' → restart' : ''}${typeof e.delay_ms === 'number' ? ` in ${e.delay_ms.toFixed(0)} ms` : ''}`];
      case 'restart':
        return [e.path, `restart #${e.restarts}`];
      case 'escalation':
        return [e.supervisor, `gave up after ${e.child}: ${e.reason}`];
      case 'estop':
        return ['', `${e.engaged ? 'ENGAGED' : 'released'}: ${e.reason}`];
      case 'config':
        return ['', `generation ${e.generation} ${e.outcome}${e.origin ? ` from ${e.origin}` : ''}${e.keys && e.keys.length ? ` (${e.keys.join(', ')})` : ''}`];
      case 'control':
        return [e.path, `${e.action}: ${e.outcome}`];
      default:
        return [e.path || '', JSON.stringify(e)];
    }
  }

  function fmtNum(v) {
    if (typeof v !== 'number') return String(v);
    if (Math.abs(v) >= 1e6) return bytes(v);
    return Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3);
  }

  function addTimeline(e) {
    const list = $('timeline');
    const li = el('li', 'entry');
    li.dataset.kind = e.kind;
    li.dataset.tsMs = String(e.ts_ms);
    if (e.kind === 'estop') li.dataset.engaged = String(!!e.engaged);
    if (e.kind === 'quota') li.dataset.action = e.action;
    const [path, text] = describe(e);
    if (path) li.dataset.path = path;
    li.append(
      el('time', 'ts', clock(e.ts_ms)),
      el('span', 'kind', `${KIND_ICON[e.kind] || '•'} ${e.kind}`),
      el('span', 'path', path),
      el('span', 'what', text),
    );
    li.title = JSON.stringify(e);
    if (path) li.addEventListener('click', () => {
      if (ui.nodes.has(path)) {
        reveal(path);
        renderTree();
        select(path);
      }
    });
    list.insertBefore(li, list.firstChild);
    while (list.children.length > TIMELINE_CAP) list.lastChild.remove();
    setText($('timeline-count'), `${list.children.length} shown`);
  }

  // ---------------------------------------------------------------- stream

  function onState(st) {
    const started = performance.now();
    ui.state = st;
    index(st.tree && st.tree.root, st.t_ms);
    renderTree();
    if (ui.search) runSearch(null);
    renderHeader();
    renderDetail();
    const robot = st.robot || {};
    renderJitter(robot.jitter);
    renderHost(robot.host);
    renderAnalytics(st.tree && st.tree.analytics);
    renderWorld(st.sim);
    document.body.dataset.stateTMs = String(st.t_ms);
    // How long this update took to render (the 1,000-actor check reads it).
    document.body.dataset.renderMs = (performance.now() - started).toFixed(1);
  }

  function setConn(state, text) {
    setAttr($('conn'), 'data-state', state);
    setText($('conn'), text);
  }

  const live = { es: null, stale: null, lastState: 0 };

  /** Opens the local robot's `/events` stream. */
  function connect() {
    const es = new EventSource('/events');
    live.es = es;
    live.lastState = 0;
    setConn('connecting', 'connecting');
    es.addEventListener('open', () => {
      setConn('live', 'live');
      // The server sends its timeline backlog on every (re)connect.
      $('timeline').replaceChildren();
    });
    es.addEventListener('error', () => setConn('reconnecting', 'reconnecting…'));
    es.addEventListener('state', (ev) => {
      live.lastState = Date.now();
      setConn('live', 'live');
      try {
        onState(JSON.parse(ev.data));
      } catch (e) {
        setConn('error', `bad state: ${e.message}`);
        throw e;
      }
    });
    es.addEventListener('timeline', (ev) => addTimeline(JSON.parse(ev.data)));
    es.addEventListener('resync', () => $('timeline').replaceChildren());
    live.stale = setInterval(() => {
      if (live.lastState && Date.now() - live.lastState > 5000 && $('conn').dataset.state === 'live') setConn('stale', 'stale (no update for 5 s)');
    }, 1000);
  }

  function disconnect() {
    if (live.es) live.es.close();
    clearInterval(live.stale);
    live.es = null;
  }

  // ---------------------------------------------------------------- fleet

  const FLEET_POLL_MS = 2000;
  const REMOTE_POLL_MS = 1000;
  const remote = { timer: null, busy: false, eventsKey: '' };

  /** `/fleet`: the robots this one reaches (itself marked `self`); fills the selector. */
  async function pollFleet() {
    let list;
    try {
      const res = await fetch('/fleet');
      if (!res.ok) return;
      list = await res.json();
    } catch (_) {
      return; // the robot is restarting or gone: the live view says so
    }
    if (!Array.isArray(list)) return;
    ui.fleet = list;
    const own = list.find((r) => r.self);
    if (own) ui.self = own.id;
    const select = $('robot-select');
    const ids = list.map((r) => r.id);
    if (ui.viewing && !ids.includes(ui.viewing)) ids.push(ui.viewing); // gone: still chosen
    const labels = ids.map((id) => {
      const r = list.find((x) => x.id === id);
      if (!r) return `${id} (unreachable)`;
      if (r.self) return `${id} (this robot)`;
      if (!r.health) return `${id} (no health)`;
      return `${id}${r.health.ready ? '' : ' (not ready)'}${r.health.estop ? ' (e-stop)' : ''}`;
    });
    const key = JSON.stringify([ids, labels]);
    if (select.dataset.key !== key) {
      select.dataset.key = key;
      select.replaceChildren(...ids.map((id, i) => {
        const o = el('option', null, labels[i]);
        o.value = id;
        return o;
      }));
    }
    select.value = ui.viewing || ui.self || '';
    $('robots').hidden = ids.length < 2;
    renderRobotId();
  }

  /** The id of the robot shown, and whether it is the one serving the page. */
  function renderRobotId() {
    const shown = ui.viewing || ui.self || '–';
    setText($('robot-id'), shown);
    document.body.dataset.robot = shown;
    document.body.dataset.remote = ui.viewing ? 'true' : 'false';
    const note = $('remote-note');
    note.hidden = !ui.viewing;
    setText(note, ui.viewing
      ? `Read-only: ${ui.viewing}'s tree and events, asked through ${ui.self || 'this robot'} once a second. `
        + `Controls only act on the robot serving this page: none crosses robots.`
      : '');
  }

  /** Forgets what was drawn for the robot shown before. */
  function resetView() {
    ui.state = null;
    ui.prev = new Map();
    ui.rates = new Map();
    ui.rows = new Map();
    ui.selected = null;
    ui.spark = new Map();
    remote.eventsKey = '';
    $('tree').replaceChildren();
    $('timeline').replaceChildren();
    setText($('timeline-count'), '');
    $('detail').replaceChildren();
    detail.built = null;
    setText($('detail-path'), '(click a row)');
    // No control may be offered while another robot is shown, not even until its first poll.
    ui.controls = false;
    $('controls-slot').replaceChildren();
  }

  /** Shows robot `id`: the live local view for the robot serving the page, else polling. */
  function view(id) {
    const next = !id || id === ui.self ? null : id;
    if (next === ui.viewing) return;
    clearInterval(remote.timer);
    remote.timer = null;
    disconnect();
    ui.viewing = next;
    resetView();
    renderRobotId();
    if (next) {
      setConn('connecting', `asking ${next}…`);
      pollRemote();
      remote.timer = setInterval(pollRemote, REMOTE_POLL_MS);
    } else {
      connect();
    }
  }

  async function fetchJson(url) {
    const res = await fetch(url);
    if (!res.ok) throw new Error(`${res.status}: ${(await res.text()).trim()}`);
    return res.json();
  }

  /** One poll of the robot shown: its tree and its kept events (skipped while one runs). */
  async function pollRemote() {
    const id = ui.viewing;
    if (!id || remote.busy) return;
    remote.busy = true;
    try {
      const base = `/fleet/${encodeURIComponent(id)}`;
      const [tree, events] = await Promise.all([fetchJson(`${base}/tree`), fetchJson(`${base}/events`)]);
      if (ui.viewing !== id) return; // switched meanwhile
      const listed = ui.fleet.find((r) => r.id === id);
      const estop = listed && listed.health ? { engaged: !!listed.health.estop, reasons: listed.health.estop || '' } : null;
      setConn('live', `polling ${id}`);
      onState({ t_ms: Date.now(), tree, robot: { estop }, controls: false });
      const list = Array.isArray(events) ? events.slice(-TIMELINE_CAP) : [];
      const last = list[list.length - 1];
      const key = `${list.length}:${last ? last.ts_ms : ''}`;
      if (key !== remote.eventsKey) {
        remote.eventsKey = key;
        $('timeline').replaceChildren();
        for (const e of list) addTimeline(e);
      }
    } catch (e) {
      if (ui.viewing === id) setConn('error', `${id}: ${e.message}`);
    } finally {
      remote.busy = false;
    }
  }

  // ---------------------------------------------------------------- wiring

  function init() {
    $('tree').addEventListener('click', (ev) => {
      const row = ev.target.closest('.row');
      if (!row) return;
      const path = row.dataset.path;
      if (ev.target.classList.contains('toggle')) toggle(path);
      else {
        select(path);
        if (ev.detail === 2) toggle(path);
      }
    });
    $('tree').addEventListener('keydown', (ev) => {
      if (!ui.selected) return;
      if (ev.key === 'ArrowRight' || ev.key === 'ArrowLeft') {
        ui.expanded.set(ui.selected, ev.key === 'ArrowRight');
        renderTree();
      }
    });
    let filterTimer = null;
    $('filter').addEventListener('input', (ev) => {
      clearTimeout(filterTimer);
      filterTimer = setTimeout(() => {
        ui.filter = ev.target.value.trim().toLowerCase();
        renderTree();
      }, 120);
    });
    $('search').addEventListener('input', (ev) => {
      ui.search = ev.target.value.trim().toLowerCase();
      runSearch('first');
    });
    $('search').addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') {
        ev.preventDefault();
        runSearch('next');
      }
    });
    $('timeline-kind').addEventListener('change', (ev) => {
      $('timeline').dataset.filter = ev.target.value;
    });
    $('robot-select').addEventListener('change', (ev) => view(ev.target.value));
    connect();
    pollFleet();
    setInterval(pollFleet, FLEET_POLL_MS);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
