// node daemon's page. Everything the API says is inserted as text
// (textContent, createTextNode, setAttribute on SVG numbers): torrent,
// file and peer names come from peers and may be anything.
'use strict';

(() => {
  const API = '/api/v1';
  const POLL_MS = 1000; // the page polls; it does not use server-sent events
  const MAX_ROWS = 500; // files or peers drawn in the detail view
  const MAX_BUCKETS = 1024; // piece map buckets drawn (the API sends at most as many)
  const SESSION_KEY = 'node-session';
  const CODE_RE = /^#login=([0-9a-f]{1,128})$/;
  const SECRET_RE = /^[0-9a-f]{1,256}$/;
  const SVGNS = 'http://www.w3.org/2000/svg';
  const IH_RE = /^[0-9a-f]{40}$/;

  const $ = (id) => document.getElementById(id);

  // el builds an HTML element; string children become text nodes.
  function el(tag, props, ...children) {
    const e = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (k === 'class') e.className = v;
        else if (k === 'dataset') Object.assign(e.dataset, v);
        else e[k] = v;
      }
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
    }
    return e;
  }

  // sv builds an SVG element; attribute values are set one by one, never
  // parsed as markup.
  function sv(tag, attrs, text) {
    const e = document.createElementNS(SVGNS, tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    }
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function tip(e, text) {
    e.append(sv('title', null, text));
    return e;
  }

  const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  const str = (v) => (typeof v === 'string' ? v : '');

  function bytes(n) {
    n = num(n);
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    let i = 0;
    while (Math.abs(n) >= 1024 && i < units.length - 1) {
      n /= 1024;
      i++;
    }
    return (i === 0 ? String(Math.round(n)) : n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)) + ' ' + units[i];
  }
  const rate = (n) => (num(n) > 0 ? bytes(n) + '/s' : '–');
  function fraction(done, length) {
    length = num(length);
    return length > 0 ? Math.min(1, Math.max(0, num(done) / length)) : 0;
  }
  const pct = (f) => (f * 100).toFixed(f > 0 && f < 0.1 ? 1 : 0) + '%';
  const total = (m) => Object.values(m || {}).reduce((a, b) => a + num(b), 0);
  function breakdown(m) {
    const parts = Object.entries(m || {})
      .filter(([, v]) => num(v) > 0)
      .sort((a, b) => num(b[1]) - num(a[1]))
      .map(([k, v]) => k + ' ' + num(v));
    return parts.length ? ' (' + parts.join(', ') + ')' : '';
  }

  // The login. The daemon prints a URL whose fragment holds a one-time
  // code (a fragment never reaches a server, a Referer or a log); the
  // page takes it out of the address and trades it for a session secret,
  // kept in sessionStorage: this tab's, this origin's (scheme, host and
  // port) alone. No cookie: a browser would send one to every port of
  // the host.
  function session() {
    try {
      const s = sessionStorage.getItem(SESSION_KEY);
      return s && SECRET_RE.test(s) ? s : '';
    } catch (e) {
      return '';
    }
  }

  function loggedOut(why) {
    try {
      sessionStorage.removeItem(SESSION_KEY);
    } catch (e) {
      // storage off: nothing kept to remove
    }
    // Without a reason, the last one given stays.
    if (why !== undefined) $('login-why').textContent = why;
    $('login-needed').hidden = false;
  }

  async function login() {
    const m = CODE_RE.exec(location.hash);
    if (!m) return;
    // Out of the address bar and of this history entry before anything
    // else: the code is spent either way.
    history.replaceState(null, '', location.pathname + location.search + '#/torrents');
    let resp;
    let data = null;
    try {
      resp = await fetch(API + '/session', {
        method: 'POST',
        credentials: 'omit',
        cache: 'no-store',
        headers: { Accept: 'application/json', 'Content-Type': 'application/json' },
        body: JSON.stringify({ code: m[1] }),
      });
      data = await resp.json();
    } catch (e) {
      // no answer, or not JSON: judged below
    }
    const secret = data && str(data.session);
    if (resp && resp.ok && SECRET_RE.test(secret)) {
      sessionStorage.setItem(SESSION_KEY, secret);
      $('login-needed').hidden = true;
    } else if (session()) {
      setStatus('that login link was used already or has expired; this tab stays logged in', true);
    } else {
      loggedOut('That login link was used already or has expired.');
    }
  }

  // Requests carry the session secret; every request that changes
  // something says it is JSON, as the server requires of the page.
  class APIError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function call(method, path, body) {
    const secret = session();
    if (!secret) {
      loggedOut();
      throw new APIError(401, 'not logged in');
    }
    const init = {
      method,
      credentials: 'omit',
      cache: 'no-store',
      headers: { Accept: 'application/json', Authorization: 'Bearer ' + secret },
    };
    if (method !== 'GET') {
      init.headers['Content-Type'] = 'application/json';
      if (body !== undefined) init.body = JSON.stringify(body);
    }
    const resp = await fetch(API + path, init);
    if (resp.status === 401) loggedOut('The daemon does not know this tab (it restarted, or the login expired).');
    else $('login-needed').hidden = true;
    if (resp.status === 204) return null;
    let data = null;
    try {
      data = await resp.json();
    } catch (e) {
      if (resp.ok) throw new APIError(resp.status, 'the daemon sent something that is not JSON');
    }
    if (!resp.ok) {
      throw new APIError(resp.status, (data && str(data.error)) || resp.status + ' ' + resp.statusText);
    }
    return data;
  }

  // Views: #/torrents, #/t/INFOHASH, #/dht.
  function route() {
    const h = location.hash;
    if (h === '#/dht') return { view: 'dht' };
    const m = /^#\/t\/([0-9a-f]{40})$/.exec(h);
    if (m) return { view: 'detail', ih: m[1] };
    return { view: 'torrents' };
  }

  function show(r) {
    for (const v of ['torrents', 'detail', 'dht']) $('view-' + v).hidden = v !== r.view;
    $('nav-torrents').classList.toggle('current', r.view !== 'dht');
    $('nav-dht').classList.toggle('current', r.view === 'dht');
    document.body.dataset.view = r.view;
  }

  // Polling: one request at a time, the next a second after the last
  // ended; a new view or an action polls at once.
  let timer = 0;
  let generation = 0;
  let lastDrawn = '';

  async function poll() {
    clearTimeout(timer);
    const g = ++generation;
    const r = route();
    show(r);
    try {
      if (!document.hidden) {
        if (r.view === 'torrents') {
          const d = await call('GET', '/torrents');
          if (g === generation) drawTorrents(Array.isArray(d && d.torrents) ? d.torrents : []);
        } else if (r.view === 'detail') {
          const d = await call('GET', '/torrents/' + r.ih);
          if (g === generation) drawDetail(d || {});
        } else {
          const d = await call('GET', '/dht');
          if (g === generation) drawDHT(d || {});
        }
        if (g === generation) setStatus('updated ' + new Date().toLocaleTimeString(), false);
      }
    } catch (e) {
      if (g === generation) setStatus(e.message, true);
    }
    if (g === generation) timer = setTimeout(poll, POLL_MS);
  }

  function setStatus(text, bad) {
    const s = $('status');
    s.textContent = text;
    s.classList.toggle('bad', bad);
  }

  // Torrents.
  const rows = new Map(); // info-hash -> <tr>

  const resumable = (state) => state === 'paused' || state === 'error' || state === 'done';

  function bar(cls) {
    const fill = el('div', { class: 'fill' });
    const label = el('span', { class: 'pct' });
    return { node: el('div', { class: 'bar ' + (cls || '') }, fill, label), fill, label };
  }

  function setBar(b, f) {
    // CSSOM, not a style attribute: the CSP allows no inline styles.
    b.fill.style.width = (f * 100).toFixed(2) + '%';
    b.label.textContent = pct(f);
    b.node.setAttribute('aria-valuenow', String(Math.round(f * 100)));
  }

  function newRow(ih) {
    const link = el('a', { href: '#/t/' + ih, class: 'tname' });
    const b = bar();
    b.node.setAttribute('role', 'progressbar');
    const cells = {
      link,
      bar: b,
      size: el('td', { class: 'num size' }),
      down: el('td', { class: 'num down' }),
      up: el('td', { class: 'num up' }),
      peers: el('td', { class: 'num peers' }),
      state: el('span', { class: 'state' }),
      toggle: el('button', { type: 'button', class: 'toggle' }),
      remove: el('button', { type: 'button', class: 'remove danger' }, 'Remove'),
    };
    const tr = el(
      'tr',
      { dataset: { ih } },
      el('td', { class: 'name' }, link),
      el('td', { class: 'progress' }, b.node),
      cells.size,
      cells.down,
      cells.up,
      cells.peers,
      el('td', null, cells.state),
      el('td', { class: 'row-actions' }, cells.toggle, cells.remove),
    );
    tr.cells_ = cells;
    cells.toggle.addEventListener('click', () => toggle(ih, tr.dataset.state));
    cells.remove.addEventListener('click', () => askRemove(ih, link.textContent, false));
    return tr;
  }

  function peersText(t) {
    const extra = [];
    if (num(t.utp_peers) > 0) extra.push(num(t.utp_peers) + ' uTP');
    if (num(t.encrypted_peers) > 0) extra.push(num(t.encrypted_peers) + ' enc');
    return String(num(t.peers)) + (extra.length ? ' (' + extra.join(', ') + ')' : '');
  }

  function complete(t) {
    return num(t.length) > 0 && num(t.done) >= num(t.length);
  }

  function drawTorrents(list) {
    const tbody = $('torrents').tBodies[0];
    list = list.filter((t) => IH_RE.test(str(t.info_hash)));
    list.sort((a, b) => str(a.added_at).localeCompare(str(b.added_at)) || str(a.name).localeCompare(str(b.name)));
    const seen = new Set();
    list.forEach((t, i) => {
      const ih = t.info_hash;
      seen.add(ih);
      let tr = rows.get(ih);
      if (!tr) {
        tr = newRow(ih);
        rows.set(ih, tr);
      }
      if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null);
      const c = tr.cells_;
      const state = str(t.state);
      tr.dataset.state = state;
      tr.classList.toggle('complete', complete(t));
      c.link.textContent = str(t.name) || ih;
      c.link.title = ih;
      setBar(c.bar, fraction(t.done, t.length));
      c.size.textContent = num(t.length) > 0 ? bytes(t.done) + ' / ' + bytes(t.length) : '–';
      c.down.textContent = rate(t.down_rate);
      c.up.textContent = rate(t.up_rate);
      c.peers.textContent = peersText(t);
      c.state.textContent = state + (t.error ? ': ' + str(t.error) : '');
      c.state.dataset.state = state;
      c.toggle.textContent = resumable(state) ? 'Resume' : 'Pause';
    });
    for (const [ih, tr] of rows) {
      if (!seen.has(ih)) {
        tr.remove();
        rows.delete(ih);
      }
    }
    $('torrents-empty').hidden = list.length > 0;
  }

  async function toggle(ih, state) {
    try {
      await call('POST', '/torrents/' + ih + (resumable(state) ? '/resume' : '/pause'));
    } catch (e) {
      setStatus(e.message, true);
    }
    poll();
  }

  // Remove, behind a confirmation that offers to delete the data.
  let removing = null;

  function askRemove(ih, name, fromDetail) {
    removing = { ih, fromDetail };
    $('remove-name').textContent = name || ih;
    $('remove-data').checked = false;
    $('remove-dialog').showModal();
  }

  $('remove-dialog').addEventListener('close', async () => {
    const r = removing;
    removing = null;
    if (!r || $('remove-dialog').returnValue !== 'remove') return;
    try {
      await call('DELETE', '/torrents/' + r.ih + '?delete_data=' + ($('remove-data').checked ? 'true' : 'false'));
      if (r.fromDetail) location.hash = '#/torrents';
    } catch (e) {
      setStatus(e.message, true);
    }
    poll();
  });

  $('add-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const magnet = $('add-magnet').value.trim();
    const dir = $('add-dir').value.trim();
    const req = { magnet };
    if (dir) req.dir = dir;
    $('add-submit').disabled = true;
    try {
      await call('POST', '/torrents', req);
      $('add-magnet').value = '';
      $('add-error').textContent = '';
    } catch (e) {
      $('add-error').textContent = 'Not added: ' + e.message;
    } finally {
      $('add-submit').disabled = false;
    }
    poll();
  });

  // One torrent.
  function dl(target, pairs) {
    target.replaceChildren();
    for (const [k, v] of pairs) {
      if (v === null || v === undefined || v === '') continue;
      target.append(el('dt', null, k), el('dd', null, String(v)));
    }
  }

  function drawDetail(d) {
    const key = JSON.stringify(d);
    if (key === lastDrawn) return;
    lastDrawn = key;
    const ih = str(d.info_hash);
    const state = str(d.state);
    $('view-detail').dataset.state = state;
    $('view-detail').classList.toggle('complete', complete(d));
    $('d-name').textContent = str(d.name) || ih;
    const ratio = num(d.length) > 0 ? (num(d.uploaded) / num(d.length)).toFixed(2) : '–';
    dl($('d-summary'), [
      ['State', state + (d.error ? ': ' + str(d.error) : '')],
      ['Info-hash', ih],
      ['Directory', str(d.dir)],
      ['Done', num(d.length) > 0 ? bytes(d.done) + ' of ' + bytes(d.length) + ' (' + pct(fraction(d.done, d.length)) + ')' : 'metadata not yet known'],
      ['Pieces', num(d.pieces) > 0 ? num(d.have) + ' of ' + num(d.pieces) : ''],
      ['Down / up', rate(d.down_rate) + ' / ' + rate(d.up_rate)],
      ['Downloaded / uploaded', bytes(d.downloaded) + ' / ' + bytes(d.uploaded) + ' (ratio ' + ratio + ')'],
      ['Seed until ratio', num(d.seed_ratio) > 0 ? num(d.seed_ratio) : 'forever'],
      ['Peers', peersText(d)],
      ['Added', d.added_at ? new Date(str(d.added_at)).toLocaleString() : ''],
    ]);

    const acts = $('d-actions');
    acts.replaceChildren(
      el('button', { type: 'button', class: 'toggle', onclick: () => toggle(ih, state) }, resumable(state) ? 'Resume' : 'Pause'),
      el('button', { type: 'button', class: 'remove danger', onclick: () => askRemove(ih, str(d.name), true) }, 'Remove'),
    );

    drawPieceMap(d);

    const files = Array.isArray(d.files) ? d.files : [];
    const totalFiles = Math.max(files.length, num(d.files_total));
    const ftb = $('d-files').tBodies[0];
    ftb.replaceChildren();
    for (const f of files.slice(0, MAX_ROWS)) {
      const b = bar('small');
      setBar(b, fraction(f.done, f.length));
      ftb.append(el('tr', null, el('td', { class: 'name' }, str(f.path)), el('td', { class: 'progress' }, b.node), el('td', { class: 'num' }, bytes(f.done) + ' / ' + bytes(f.length))));
    }
    const shown = Math.min(files.length, MAX_ROWS);
    if (totalFiles > shown) ftb.append(el('tr', null, el('td', { colSpan: 3, class: 'quiet' }, 'and ' + (totalFiles - shown) + ' more files')));

    const peers = Array.isArray(d.peer_list) ? d.peer_list : [];
    const ptb = $('d-peers').tBodies[0];
    ptb.replaceChildren();
    for (const p of peers.slice(0, MAX_ROWS)) {
      ptb.append(
        el('tr', null,
          el('td', { class: 'addr' }, str(p.addr)),
          el('td', null, p.outgoing ? 'out' : 'in'),
          el('td', null, str(p.transport)),
          el('td', null, str(p.encryption)),
          el('td', { class: 'num' }, bytes(p.downloaded)),
          el('td', { class: 'num' }, bytes(p.uploaded))));
    }
    if (peers.length > MAX_ROWS) ptb.append(el('tr', null, el('td', { colSpan: 6, class: 'quiet' }, 'and ' + (peers.length - MAX_ROWS) + ' more peers')));
    $('d-peers-empty').hidden = peers.length > 0;
  }

  // drawPieceMap draws the API's piece buckets (each the share of its
  // run of pieces verified), a run of equal buckets as one rectangle: at
  // most MAX_BUCKETS elements, however many pieces.
  function drawPieceMap(d) {
    const s = $('d-pieces');
    s.replaceChildren();
    const b = (Array.isArray(d.piece_buckets) ? d.piece_buckets : []).slice(0, MAX_BUCKETS).map((v) => Math.min(1, Math.max(0, num(v))));
    const n = b.length;
    const pieces = Math.max(n, num(d.pieces));
    $('d-pieces-label').textContent = n ? '' : '(metadata not yet known)';
    s.setAttribute('viewBox', '0 0 ' + Math.max(1, n) + ' 1');
    s.append(sv('rect', { x: 0, y: 0, width: Math.max(1, n), height: 1, class: 'missing' }));
    let have = 0;
    for (let i = 0; i < n; ) {
      let j = i;
      while (j < n && b[j] === b[i]) j++;
      if (b[i] > 0) {
        const r = sv('rect', { x: i, y: 0, width: j - i, height: 1, class: b[i] === 1 ? 'have' : 'have part' });
        if (b[i] < 1) r.setAttribute('fill-opacity', (0.15 + 0.85 * b[i]).toFixed(3));
        s.append(r);
      }
      for (let k = i; k < j; k++) have += Math.round(b[k] * (Math.floor(((k + 1) * pieces) / n) - Math.floor((k * pieces) / n)));
      i = j;
    }
    s.dataset.have = String(have);
    s.dataset.pieces = String(n ? pieces : 0);
  }

  // DHT.
  function drawDHT(d) {
    const key = JSON.stringify(d);
    if (key === lastDrawn) return;
    lastDrawn = key;
    dl($('dht-summary'), [
      ['Node ID', str(d.id)],
      ['Address', [str(d.addr), str(d.addr6)].filter(Boolean).join(', ')],
      ['External', str(d.external)],
      ['Nodes', num(d.nodes) + ' (' + num(d.good) + ' good)'],
      ['Queries in', total(d.queries_in) + breakdown(d.queries_in)],
      ['Queries out', total(d.queries_out) + breakdown(d.queries_out)],
      ['Answers / timeouts', num(d.responses) + ' / ' + num(d.timeouts)],
      ['Dropped', total(d.drops) + breakdown(d.drops)],
      ['Peer store', num(d.store_peers) + ' peers for ' + num(d.store_info_hashes) + ' info-hashes'],
    ]);
    drawTable(Array.isArray(d.buckets) ? d.buckets : []);
    const lookups = Array.isArray(d.lookups) ? d.lookups : [];
    const box = $('dht-lookups');
    box.replaceChildren(...lookups.map(drawLookup));
    $('dht-lookups-empty').hidden = lookups.length > 0;
  }

  // niceTicks gives at most max round values from lo to hi.
  function niceTicks(lo, hi, max) {
    const span = hi - lo;
    if (!(span > 0)) return [lo];
    let step = Math.pow(10, Math.floor(Math.log10(span / max)));
    for (const m of [1, 2, 5, 10]) {
      if (span / (step * m) <= max) {
        step *= m;
        break;
      }
    }
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toFixed(6));
    return out;
  }

  function extent(values, minSpan, lo, hi) {
    let a = Infinity;
    let b = -Infinity;
    for (const v of values) {
      a = Math.min(a, v);
      b = Math.max(b, v);
    }
    if (a === Infinity) return [lo, hi];
    a = Math.floor(a);
    b = Math.ceil(b);
    if (b - a < minSpan) b = a + minSpan;
    return [a, b];
  }

  const nodeState = (s) => (s === 'good' || s === 'questionable' || s === 'bad' ? s : 'unknown');

  // drawTable draws each family's routing table: a row per bucket, top
  // the shallowest (farthest half of the ID space), each node a dot at
  // its log2 XOR distance from our ID.
  function drawTable(buckets) {
    const box = $('dht-table');
    const families = new Map();
    for (const b of buckets) {
      const f = str(b.family) || 'ipv4';
      if (!families.has(f)) families.set(f, []);
      families.get(f).push(b);
    }
    const figs = [];
    for (const [family, bs] of [...families].sort((a, b) => a[0].localeCompare(b[0]))) {
      bs.sort((a, b) => num(a.depth) - num(b.depth));
      const W = 960;
      const L = 150;
      const R = 930;
      const T = 34;
      const rowH = 22;
      const H = T + rowH * bs.length + 44;
      const dists = [];
      for (const b of bs) for (const n of b.nodes || []) dists.push(Math.min(160, Math.max(0, num(n.dist))));
      const [dmin, dmax] = extent(dists, 1, 150, 160);
      const xOf = (v) => L + ((v - dmin) / (dmax - dmin)) * (R - L);
      const s = sv('svg', { class: 'rtable', viewBox: `0 0 ${W} ${H}`, width: W, height: H, 'data-family': family });
      const count = dists.length;
      s.append(sv('text', { x: L, y: 18, class: 'title' }, family + ': ' + bs.length + ' buckets, ' + count + ' nodes'));
      const bottom = T + rowH * bs.length;
      for (const t of niceTicks(dmin, dmax, 10)) {
        s.append(sv('line', { x1: xOf(t), y1: T, x2: xOf(t), y2: bottom, class: 'grid' }));
        s.append(sv('text', { x: xOf(t), y: bottom + 16, 'text-anchor': 'middle' }, String(t)));
      }
      s.append(sv('text', { x: (L + R) / 2, y: bottom + 36, 'text-anchor': 'middle' }, 'log2 XOR distance from our ID'));
      bs.forEach((b, i) => {
        const y = T + rowH * i + rowH / 2;
        const nodes = Array.isArray(b.nodes) ? b.nodes : [];
        const g = sv('g', { class: 'bucket', 'data-depth': num(b.depth) });
        if (i % 2 === 0) g.append(sv('rect', { x: L, y: y - rowH / 2, width: R - L, height: rowH, class: 'band' }));
        g.append(sv('text', { x: L - 8, y: y + 4, 'text-anchor': 'end' }, 'depth ' + num(b.depth) + ' · ' + nodes.length));
        nodes.forEach((n, j) => {
          const dist = Math.min(160, Math.max(0, num(n.dist)));
          const c = sv('circle', { cx: xOf(dist).toFixed(1), cy: y + ((j % 3) - 1) * 5, r: 4, class: 'node ' + nodeState(n.state) });
          tip(c, str(n.id) + ' ' + str(n.addr) + ' ' + str(n.state) + ', distance 2^' + dist.toFixed(2));
          g.append(c);
        });
        s.append(g);
      });
      s.append(sv('line', { x1: L, y1: bottom, x2: R, y2: bottom, class: 'axis' }));
      figs.push(s);
    }
    if (!figs.length) figs.push(el('p', { class: 'quiet' }, 'The routing table is empty.'));
    box.replaceChildren(...figs);
  }

  // drawLookup draws one lookup as it converged: each queried node a line
  // from when it was asked to when it answered, at its distance to the
  // target, with a mark when it ended; the staircase is the nearest
  // answer so far.
  function drawLookup(lk) {
    const W = 960;
    const H = 300;
    const L = 90;
    const R = 930;
    const T = 50;
    const B = 250;
    const answers = Array.isArray(lk.answers) ? lk.answers : [];
    const known = (a) => typeof a.dist === 'number' && Number.isFinite(a.dist);
    let span = Math.max(1, num(lk.duration_ms));
    for (const a of answers) span = Math.max(span, num(a.done_ms), num(a.sent_ms));
    const [dmin, dmax] = extent(answers.filter(known).map((a) => a.dist), 1, 0, 160);
    const unknownY = B - 6;
    const plotB = B - 24;
    const xOf = (ms) => L + (Math.max(0, ms) / span) * (R - L);
    const yOf = (dist) => T + ((dist - dmin) / (dmax - dmin)) * (plotB - T);

    const s = sv('svg', { class: 'lookup', viewBox: `0 0 ${W} ${H}`, width: W, height: H });
    const ok = answers.filter((a) => a.ok).length;
    s.append(sv('text', { x: L, y: 18, class: 'title' }, str(lk.method) + ' ' + str(lk.target)));
    s.append(sv('text', { x: L, y: 36 },
      answers.length + ' queried, ' + ok + ' answered, ' + (answers.length - ok) + ' failed, ' + num(lk.peers) + ' peers, ' +
      num(lk.duration_ms).toFixed(0) + ' ms' + (lk.start ? ', ' + new Date(str(lk.start)).toLocaleTimeString() : '')));
    for (const t of niceTicks(0, span, 8)) {
      s.append(sv('line', { x1: xOf(t), y1: T, x2: xOf(t), y2: plotB, class: 'grid' }));
      s.append(sv('text', { x: xOf(t), y: B + 16, 'text-anchor': 'middle' }, String(t)));
    }
    for (const d of niceTicks(dmin, dmax, 6)) {
      s.append(sv('line', { x1: L, y1: yOf(d), x2: R, y2: yOf(d), class: 'grid' }));
      s.append(sv('text', { x: L - 6, y: yOf(d) + 4, 'text-anchor': 'end' }, String(d)));
    }
    s.append(sv('text', { x: L - 6, y: unknownY + 4, 'text-anchor': 'end' }, 'ID unknown'));
    s.append(sv('line', { x1: L, y1: B + 2, x2: R, y2: B + 2, class: 'axis' }));
    s.append(sv('line', { x1: L, y1: T, x2: L, y2: B + 2, class: 'axis' }));
    s.append(sv('text', { x: (L + R) / 2, y: B + 36, 'text-anchor': 'middle' }, 'ms since the lookup started'));
    s.append(sv('text', { transform: `translate(18 ${(T + B) / 2}) rotate(-90)`, 'text-anchor': 'middle' }, 'log2 distance to target'));

    // The nearest answer so far, as time goes on.
    const best = answers.filter((a) => a.ok && known(a)).sort((a, b) => num(a.done_ms) - num(b.done_ms));
    if (best.length) {
      let cur = Infinity;
      const pts = [];
      for (const a of best) {
        if (a.dist < cur) {
          if (cur !== Infinity) pts.push([xOf(num(a.done_ms)), yOf(cur)]);
          cur = a.dist;
          pts.push([xOf(num(a.done_ms)), yOf(cur)]);
        }
      }
      pts.push([xOf(span), yOf(cur)]);
      s.append(sv('polyline', { points: pts.map((p) => p[0].toFixed(1) + ',' + p[1].toFixed(1)).join(' '), class: 'best' }));
    }

    const marks = sv('g', { class: 'answers' });
    for (const a of answers) {
      const y = known(a) ? yOf(a.dist) : unknownY;
      const x0 = xOf(num(a.sent_ms));
      const x1 = xOf(Math.max(num(a.sent_ms), num(a.done_ms)));
      marks.append(sv('line', { x1: x0.toFixed(1), y1: y.toFixed(1), x2: x1.toFixed(1), y2: y.toFixed(1), class: 'flight' }));
      const what = str(a.addr) + (known(a) ? ', distance 2^' + a.dist.toFixed(2) : ', ID unknown') +
        ', asked at ' + num(a.sent_ms).toFixed(1) + ' ms, ' + (a.ok ? 'answered' : 'failed') + ' at ' + num(a.done_ms).toFixed(1) + ' ms';
      let m;
      if (a.ok) {
        m = sv('circle', { cx: x1.toFixed(1), cy: y.toFixed(1), r: 4, class: 'mark ok' });
      } else {
        m = sv('rect', { x: (x1 - 3.5).toFixed(1), y: (y - 3.5).toFixed(1), width: 7, height: 7, class: 'mark fail' });
      }
      marks.append(tip(m, what));
    }
    s.append(marks);
    return el('figure', { class: 'lookup-fig' }, s);
  }

  // A login URL opened in a tab already on the page changes only the
  // fragment: no new page load, so the hash change logs in too.
  window.addEventListener('hashchange', async () => {
    lastDrawn = '';
    await login();
    poll();
  });
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) poll();
  });
  login().then(poll);
})();
