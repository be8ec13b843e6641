// The observer page in a real browser: Debian's /usr/bin/chromium, headless, driven by
// playwright-core against a running `nevil run`. tests/observer.rs starts the robot and runs this.
//
//   node tests/browser/observer.mjs --url http://127.0.0.1:PORT --scenario faults|controls|fleet
//        [--screenshot PATH] [--token TOKEN] [--chromium PATH]
//        [--self ID --peer ID --peer-pid PID]   (fleet: the robot serving the page, another one)
//   node tests/browser/observer.mjs --scenario scale   (serves the page and 1,021 actors itself)
//
// `--url -` launches the browser first, prints "browser ready", then reads the URL from the
// first line of stdin (so the page can be open before the robot's drills fire).
// Exits 0 when every assertion holds, 1 with a message naming the failed one otherwise.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

const ARGS = parseArgs(process.argv.slice(2));
const OVERALL_MS = Number(ARGS['timeout-ms'] || process.env.OBSERVER_TIMEOUT_MS || 60000);
const PROMISE_MS = 2000; // the page shows what the tree shows within this (server clock)

function parseArgs(argv) {
  const out = {
    url: process.env.OBSERVER_URL,
    scenario: process.env.OBSERVER_SCENARIO,
    screenshot: process.env.OBSERVER_SCREENSHOT,
    token: process.env.OBSERVER_TOKEN,
    chromium: process.env.CHROMIUM || '/usr/bin/chromium',
  };
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    if (!a.startsWith('--') || i + 1 >= argv.length) throw new Error(`bad argument ${a}: expected --name value`);
    out[a.slice(2)] = argv[i + 1];
    i += 1;
  }
  return out;
}

class Failure extends Error {}

function check(cond, message) {
  if (!cond) throw new Failure(message);
}

function log(message) {
  process.stdout.write(`observer test: ${message}\n`);
}

/** Waits for `fn(arg)` to be truthy in the page; a failure names `what`. */
async function waitInPage(page, what, fn, arg, timeout = OVERALL_MS) {
  try {
    return await (await page.waitForFunction(fn, arg, { timeout, polling: 50 })).jsonValue();
  } catch (e) {
    throw new Failure(`timed out after ${timeout} ms waiting for ${what}: ${e.message.split('\n')[0]}`);
  }
}

async function getJson(url) {
  const res = await fetch(url);
  check(res.ok, `GET ${url}: ${res.status}`);
  return res.json();
}

function findNode(node, wanted) {
  if (node.path === wanted) return node;
  for (const c of node.children || []) {
    const hit = findNode(c, wanted);
    if (hit) return hit;
  }
  return null;
}

async function treeNode(base, wanted) {
  const tree = await getJson(`${base}/tree`);
  const node = findNode(tree.root, wanted);
  check(node, `/tree has no ${wanted}`);
  return node;
}

const rowSel = (p) => `.row[data-path="${p}"]`;

async function rowAttr(page, p, attr) {
  return page.getAttribute(rowSel(p), attr);
}

// ------------------------------------------------------------------ scenarios

const MOTION = 'root/control/motion';
const SPUN = 'root/control/behaviours/obstacle_avoidance';

async function faults(page, base) {
  for (const p of ['root', 'root/drivers/ultrasonic', 'root/drivers/motors', MOTION, 'root/safety/watchdog', SPUN]) {
    await waitInPage(page, `the tree row ${p}`, (sel) => !!document.querySelector(sel), rowSel(p));
  }
  log('the tree shows the robot\'s actors');

  // Motion's restart: measured from when /tree shows it to when the page shows it.
  let treeAt = null;
  const poll = (async () => {
    const deadline = Date.now() + OVERALL_MS;
    while (Date.now() < deadline) {
      const n = await treeNode(base, MOTION);
      if (n.restarts >= 1) {
        treeAt = performance.now();
        return;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  await waitInPage(page, `${MOTION}'s restart in its row (data-restarts >= 1)`,
    (sel) => Number(document.querySelector(sel)?.dataset.restarts) >= 1, rowSel(MOTION));
  const pageAt = performance.now();
  await poll;
  check(treeAt !== null, `/tree never showed ${MOTION} restarted`);
  const restartEntry = `#timeline .entry[data-kind="restart"][data-path="${MOTION}"]`;
  await waitInPage(page, `a restart entry for ${MOTION} in the timeline`, (sel) => !!document.querySelector(sel), restartEntry);
  // The promise, on the robot's clock: the state event that first showed the restart came
  // within 2 s of the restart itself. (A page opened after the restart shows it at once.)
  const shownAt = Number(await rowAttr(page, MOTION, 'data-restarts-at'));
  const restartedAt = Number(await page.getAttribute(restartEntry, 'data-ts-ms'));
  if (shownAt) {
    const lag = shownAt - restartedAt;
    log(`motion's restart: shown by the state of ${lag} ms after it (robot clock); page ${Math.max(0, pageAt - treeAt).toFixed(0)} ms after /tree (node's clock, informative)`);
    check(lag <= PROMISE_MS, `the page showed motion's restart ${lag} ms after it happened (promised within ${PROMISE_MS} ms)`);
  } else {
    log('the page connected after motion\'s restart: it showed it with its first state');
  }

  await waitInPage(page, `the throttled quota state on ${SPUN}`,
    (sel) => document.querySelector(sel)?.dataset.quota === 'throttled', rowSel(SPUN));
  await waitInPage(page, `a throttle entry for ${SPUN} in the timeline`, (sel) => !!document.querySelector(sel),
    `#timeline .entry[data-kind="quota"][data-action="throttle"][data-path="${SPUN}"]`);
  log('the spin drill shows the throttled state');

  // Select the spun actor: its detail draws usage against its limits.
  await page.click(`${rowSel(SPUN)} .name`);
  await waitInPage(page, 'the detail panel of the selected actor',
    (p) => document.getElementById('detail-path')?.textContent === p && document.querySelectorAll('#detail .meter').length === 4, SPUN);
  const marks = await page.$$eval('#detail .meter[data-resource="cpu"] .mark', (ms) => ms.filter((m) => !m.hidden).length);
  check(marks === 3, `the CPU meter of ${SPUN} draws soft/burst/hard marks (got ${marks})`);
  check(await page.textContent('#detail-qstate') !== '', 'the detail panel shows the quota state');

  // Robot panel, world, e-stop.
  await waitInPage(page, 'bars in the jitter histogram', () => document.querySelectorAll('#jitter rect.bar').length > 0);
  await waitInPage(page, 'the world panel (simulation)', () => {
    const panel = document.getElementById('world-panel');
    const car = document.getElementById('world-car');
    const trail = document.getElementById('world-trail');
    return panel && !panel.hidden && car && car.getAttribute('transform') && trail && trail.getAttribute('points').split(' ').length > 1
      && document.querySelectorAll('#world .track').length === 1;
  });
  const estop = await page.getAttribute('#estop', 'data-engaged');
  check(estop === 'true' || estop === 'false', `the e-stop badge shows a state (got ${estop})`);
  log(`jitter bars, the world and the e-stop (${estop === 'true' ? 'ENGAGED' : 'released'}) are drawn`);

  // Alone (no network session): the robot's id, and no robot selector.
  await waitInPage(page, 'the id of the robot shown', () => document.body.dataset.robot && document.body.dataset.robot !== '–');
  check(await page.$eval('#robots', (b) => getComputedStyle(b).display === 'none'), 'a robot alone shows a robot selector');
  log(`the page shows robot ${await page.textContent('#robot-id')} alone, with no robot selector`);

  // Read-only: no controls at all.
  const controls = await page.$$eval('button[data-action], #controls-token, #detail button, #controls-slot *', (els) => els.length);
  check(controls === 0, `no token was configured, yet the page has ${controls} control element(s)`);
  log('no control buttons and no token field');
}

async function controls(page, base) {
  const TARGET = 'root/control/behaviours/obstacle_avoidance'; // the default config's behaviour
  check(ARGS.token, 'the controls scenario needs --token');
  await waitInPage(page, 'the token field', () => !!document.getElementById('controls-token'));
  await waitInPage(page, `the tree row ${TARGET}`, (sel) => !!document.querySelector(sel), rowSel(TARGET));

  // From outside the page: a POST without the header, or with a wrong token, gets 403.
  const url = `${base}/actors/${TARGET}/restart`;
  let res = await fetch(url, { method: 'POST' });
  check(res.status === 403, `POST without Authorization: expected 403, got ${res.status}`);
  res = await fetch(url, { method: 'POST', headers: { Authorization: 'Bearer not-the-token' } });
  check(res.status === 403, `POST with a wrong token: expected 403, got ${res.status}`);
  log('a POST without the token, or with a wrong one, gets 403');

  await page.click(`${rowSel(TARGET)} .name`);
  await waitInPage(page, 'the Restart button', () => !!document.querySelector('button[data-action="restart"]'));
  for (const action of ['suspend', 'resume']) {
    check(await page.$(`button[data-action="${action}"]`), `no ${action} button`);
  }

  const before = (await treeNode(base, TARGET)).restarts;
  await page.fill('#controls-token', 'not-the-token');
  await page.click('button[data-action="restart"]');
  await waitInPage(page, 'the error of a wrong token', () => {
    const out = document.getElementById('control-result');
    return out && out.dataset.outcome === 'error' && out.textContent.startsWith('403');
  });
  log(`a wrong token shows: ${await page.textContent('#control-result')}`);
  check((await treeNode(base, TARGET)).restarts === before, 'a refused restart restarted the actor');

  await page.fill('#controls-token', ARGS.token);
  await page.click('button[data-action="restart"]');
  await waitInPage(page, 'the answer to the restart', () => {
    const out = document.getElementById('control-result');
    return out && (out.dataset.outcome === 'ok' || out.dataset.outcome === 'error');
  });
  const answer = await page.textContent('#control-result');
  check(await page.getAttribute('#control-result', 'data-outcome') === 'ok', `the restart was refused: ${answer}`);
  await waitInPage(page, `${TARGET}'s restarts to go up by one in its row`,
    ([sel, n]) => Number(document.querySelector(sel)?.dataset.restarts) === n, [rowSel(TARGET), before + 1]);
  const after = (await treeNode(base, TARGET)).restarts;
  check(after === before + 1, `/tree shows ${TARGET} restarted ${after} times (expected ${before + 1})`);
  await waitInPage(page, 'the control entry in the timeline', (sel) => !!document.querySelector(sel),
    `#timeline .entry[data-kind="control"][data-path="${TARGET}"]`);
  log(`the page restarted ${TARGET} (${before} -> ${after}): ${answer}`);

  // The token is kept for the session (sessionStorage), not sent by the server.
  await page.reload();
  await waitInPage(page, 'the token field after a reload', () => !!document.getElementById('controls-token'));
  check(await page.inputValue('#controls-token') === ARGS.token, 'the token was not kept for the session');
}

// The fleet: robot --self serves the page (with controls, --token), robot --peer (its pid
// --peer-pid, its motion restarted by a drill) is reached through it. Switching to the
// peer shows its id, tree and events and no control; switching back, the live local view
// and its controls again.
async function fleet(page, base) {
  for (const a of ['self', 'peer', 'peer-pid', 'token']) check(ARGS[a], `the fleet scenario needs --${a}`);
  const [self, peer] = [ARGS.self, ARGS.peer];
  await waitInPage(page, 'the token field of the robot serving the page', () => !!document.getElementById('controls-token'));
  await page.fill('#controls-token', ARGS.token);
  await waitInPage(page, `the robot selector listing ${self} and ${peer}`, ([a, b]) => {
    const box = document.getElementById('robots');
    const ids = [...document.querySelectorAll('#robot-select option')].map((o) => o.value);
    return box && getComputedStyle(box).display !== 'none' && ids.length === 2 && ids.includes(a) && ids.includes(b);
  }, [self, peer]);
  check(await page.textContent('#robot-id') === self, `the page does not show ${self} as the robot shown`);
  log(`the selector lists ${self} and ${peer}`);

  await page.selectOption('#robot-select', peer);
  await waitInPage(page, `${peer}'s id, pid and tree`, ([id, pid, sel]) =>
    document.body.dataset.robot === id && document.body.dataset.remote === 'true'
      && document.getElementById('robot-id').textContent === id
      && document.getElementById('pid').textContent === pid && !!document.querySelector(sel),
  [peer, ARGS['peer-pid'], rowSel(MOTION)]);
  await waitInPage(page, `${peer}'s restart of ${MOTION} in the timeline (its events)`, (sel) => !!document.querySelector(sel),
    `#timeline .entry[data-kind="restart"][data-path="${MOTION}"]`);
  await page.click(`${rowSel(MOTION)} .name`);
  await waitInPage(page, 'the detail panel of the selected actor', (p) => document.getElementById('detail-path')?.textContent === p, MOTION);
  const controlsShown = await page.$$eval('button[data-action], #controls-token, #controls-slot *', (els) => els.length);
  check(controlsShown === 0, `${peer} is shown, yet the page offers ${controlsShown} control element(s)`);
  const note = await page.textContent('#remote-note');
  check(!(await page.$eval('#remote-note', (n) => n.hidden)) && note.includes('Read-only') && note.includes('none crosses robots'),
    `the page does not say another robot is read-only: ${note}`);
  check((await page.textContent('#conn')) === `polling ${peer}`, `the connection badge says ${await page.textContent('#conn')}`);
  log(`the page shows ${peer}'s tree (pid ${ARGS['peer-pid']}) and events, and no controls`);

  await page.selectOption('#robot-select', self);
  await waitInPage(page, `the live view of ${self} and its controls`, (id) =>
    document.body.dataset.robot === id && document.body.dataset.remote === 'false'
      && document.getElementById('conn').dataset.state === 'live' && !!document.getElementById('controls-token'), self);
  check(await page.inputValue('#controls-token') === ARGS.token, 'the token was not kept across the switch');
  await waitInPage(page, `the tree row ${MOTION}`, (sel) => !!document.querySelector(sel), rowSel(MOTION));
  await page.click(`${rowSel(MOTION)} .name`);
  await waitInPage(page, 'the Restart button again', () => !!document.querySelector('button[data-action="restart"]'));
  const ownPid = String((await getJson(`${base}/tree`)).pid);
  check(await page.textContent('#pid') === ownPid, `back on ${self}, the page shows pid ${await page.textContent('#pid')} (${self}'s is ${ownPid})`);
  log(`switching back shows ${self} live, with its controls and the token`);
}

// The scale scenario needs no robot: this script serves the page's own files (the ones the
// binary embeds) and an `/events` stream of a 1,021-actor tree (20 supervisors of 50
// workers) in which exactly one worker changes per update.
const GROUPS = 20;
const WORKERS = 50;

function syntheticState(seq) {
  const quota = { group: 'standard', state: 'ok', enforcements_total: 0, history: [], enforcements_by_action: {}, usage: null, limits: {} };
  const node = (p, kind, children = []) => ({
    name: p.split('/').pop(), path: p, kind, strategy: kind === 'supervisor' ? 'one_for_one' : null, status: 'running',
    restarts: 0, last_exit: null, mailbox_depth: 0, messages_handled: 0, cpu_seconds: 0, memory_bytes: 0,
    quota: kind === 'worker' ? { ...quota } : null, placement: 'in_process', pid: 1, isolation: null, children,
  });
  // Update k restarts worker k mod N: a worker's restarts count the updates that chose it.
  const N = GROUPS * WORKERS;
  const restarts = (i) => (i === 0 ? Math.floor(seq / N) : seq >= i ? Math.floor((seq - i) / N) + 1 : 0);
  const groups = [];
  for (let g = 0; g < GROUPS; g += 1) {
    const workers = [];
    for (let w = 0; w < WORKERS; w += 1) {
      const n = node(`root/group${g}/worker${w}`, 'worker');
      n.restarts = restarts(g * WORKERS + w);
      workers.push(n);
    }
    groups.push(node(`root/group${g}`, 'supervisor', workers));
  }
  return {
    t_ms: 1_700_000_000_000 + seq * 1000, controls: false,
    tree: { pid: 1, uptime_s: seq, config_generation: 1, root: node('root', 'supervisor', groups), analytics: { risk: [], patterns: [] } },
    robot: { estop: { engaged: false, reasons: null }, jitter: null, host: null }, sim: null,
  };
}

async function serveSynthetic() {
  const http = await import('node:http');
  const dir = new URL('../../assets/observer/', import.meta.url);
  const files = { '/': ['index.html', 'text/html'], '/observer.js': ['observer.js', 'text/javascript'], '/observer.css': ['observer.css', 'text/css'] };
  const streams = new Set();
  let seq = 0;
  const timer = setInterval(() => {
    seq += 1;
    const data = `event: state\ndata: ${JSON.stringify(syntheticState(seq))}\n\n`;
    for (const s of streams) s.write(data);
  }, 250);
  const server = http.createServer((req, res) => {
    const f = files[req.url];
    if (f) {
      res.writeHead(200, { 'content-type': f[1], 'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'" });
      res.end(fs.readFileSync(new URL(f[0], dir)));
    } else if (req.url === '/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
      streams.add(res);
      req.on('close', () => streams.delete(res));
      res.write(`event: state\ndata: ${JSON.stringify(syntheticState(seq))}\n\n`);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => {
      clearInterval(timer);
      for (const s of streams) s.destroy();
      server.close();
    },
  };
}

/** Waits for `n` more state updates to be rendered. */
async function updates(page, n) {
  const start = Number(await page.getAttribute('body', 'data-state-t-ms'));
  await waitInPage(page, `${n} more state updates`, ([t, k]) => Number(document.body.dataset.stateTMs) >= t + k * 1000, [start, n]);
}

const rowCount = (page) => page.$$eval('#tree .row', (rows) => rows.length);

async function scale(page) {
  const total = 1 + GROUPS + GROUPS * WORKERS;
  await waitInPage(page, 'the actor count', (n) => document.getElementById('actor-count')?.textContent === String(n), total);
  let rows = await rowCount(page);
  check(rows === 1 + GROUPS, `large supervisors start folded: expected ${1 + GROUPS} rows in the page, found ${rows}`);

  // Updates touch rows in place: the same elements, and only the changed one mutates.
  await page.evaluate(() => { document.querySelector('.row[data-path="root/group3"]').dataset.mark = 'kept'; });
  await page.click('.row[data-path="root/group0"] .toggle');
  await updates(page, 2);
  check(await page.getAttribute('.row[data-path="root/group3"]', 'data-mark') === 'kept', 'an update replaced a row instead of updating it');
  rows = await rowCount(page);
  check(rows === 1 + GROUPS + WORKERS, `an unfolded supervisor stays unfolded across updates: expected ${1 + GROUPS + WORKERS} rows, found ${rows}`);
  // Everything open: 1,021 rows, and the scroll position survives updates.
  for (let g = 1; g < GROUPS; g += 1) await page.click(`.row[data-path="root/group${g}"] .toggle`);
  rows = await rowCount(page);
  check(rows === total, `every supervisor unfolded: expected ${total} rows, found ${rows}`);
  await page.evaluate(() => { document.getElementById('tree').scrollTop = 6000; });
  const scrolled = await page.evaluate(() => document.getElementById('tree').scrollTop);
  await updates(page, 3);
  const after = await page.evaluate(() => document.getElementById('tree').scrollTop);
  check(scrolled > 0 && after === scrolled, `the tree's scroll position moved from ${scrolled} to ${after} across updates`);
  const touched = await page.evaluate(() => new Promise((resolve) => {
    const rowsTouched = new Set();
    const obs = new MutationObserver((muts) => {
      for (const m of muts) {
        const row = (m.target.nodeType === 1 ? m.target : m.target.parentElement)?.closest('.row');
        if (row) rowsTouched.add(row.dataset.path);
      }
    });
    obs.observe(document.getElementById('tree'), { subtree: true, attributes: true, characterData: true, childList: true });
    const t = document.body.dataset.stateTMs;
    const poll = setInterval(() => {
      if (document.body.dataset.stateTMs !== t) {
        clearInterval(poll);
        obs.disconnect();
        resolve([...rowsTouched]);
      }
    }, 5);
  }));
  check(touched.length === 1, `one actor restarted, yet an update touched ${touched.length} rows: ${touched.slice(0, 5).join(', ')}`);

  log(`1,021 rows open: an update renders in ${await page.getAttribute('body', 'data-render-ms')} ms (informative)`);

  // Filter: the matches and their ancestors only.
  await page.fill('#filter', 'worker42');
  await waitInPage(page, 'the filter to apply', (n) => document.querySelectorAll('#tree .row').length === n, 1 + 2 * GROUPS);
  const paths = await page.$$eval('#tree .row', (rs) => rs.map((r) => r.dataset.path));
  check(paths.every((p) => p.includes('worker42') || /^root(\/group\d+)?$/.test(p)), `the filter shows rows that do not match: ${paths.join(', ')}`);
  await page.fill('#filter', '');
  await waitInPage(page, 'the filter to clear', (n) => document.querySelectorAll('#tree .row').length === n, total);

  // Search: matches counted, ancestors opened, the first selected; Enter goes to the next.
  await page.click('.row[data-path="root/group17"] .toggle'); // fold it: the search must open it
  await page.fill('#search', 'group17/worker4');
  await waitInPage(page, 'the search count', () => document.getElementById('search-count')?.textContent === '1/11');
  check(await page.textContent('#detail-path') === 'root/group17/worker4', 'the search did not select its first match');
  await page.press('#search', 'Enter');
  await waitInPage(page, 'the next match', () => document.getElementById('detail-path')?.textContent === 'root/group17/worker40');
  const highlighted = await page.$$eval('#tree .row[data-match="true"]', (rs) => rs.length);
  check(highlighted === 11, `the search highlights ${highlighted} rows, expected 11`);
  log('1,021 actors: folded supervisors, in-place updates, filter and search hold');
}

// ------------------------------------------------------------------ main

async function readUrl() {
  if (ARGS.url !== '-') return ARGS.url;
  log('browser ready');
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    rl.close();
    return line.trim();
  }
  throw new Failure('stdin closed before a URL was given');
}

async function main() {
  const scenarios = { faults, controls, fleet, scale };
  const scenario = scenarios[ARGS.scenario];
  check(scenario, `--scenario must be one of ${Object.keys(scenarios).join(', ')} (got ${ARGS.scenario})`);
  const synthetic = ARGS.scenario === 'scale' ? await serveSynthetic() : null;
  if (synthetic) ARGS.url = synthetic.url;
  check(ARGS.url, '--url URL (or - to read it from stdin) is required');
  check(fs.existsSync(ARGS.chromium), `${ARGS.chromium} is missing: install Debian's chromium (apt-get install chromium) or pass --chromium PATH`);

  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'nevil-observer-chromium-'));
  // A fresh, empty profile (--user-data-dir) for each run.
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: ARGS.chromium,
    headless: true,
    viewport: { width: 1400, height: 1000 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const problems = [];
  try {
    const base = (await readUrl()).replace(/\/$/, '');
    const page = browser.pages()[0] || (await browser.newPage());
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      // A refused control answers 403: the browser logs that resource, which is expected.
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(`console error: ${m.text()}`);
    });
    const res = await page.goto(`${base}/`);
    check(res && res.ok(), `GET ${base}/ answered ${res && res.status()}`);
    await waitInPage(page, 'the live connection to /events', () => document.getElementById('conn')?.dataset.state === 'live');
    await scenario(page, base);
    check(problems.length === 0, `the page reported errors:\n${problems.join('\n')}`);
    if (ARGS.screenshot) {
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: ARGS.screenshot, fullPage: true });
      log(`screenshot saved to ${ARGS.screenshot}`);
    }
    log(`scenario ${ARGS.scenario}: passed`);
  } finally {
    await browser.close();
    if (synthetic) synthetic.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    // Playwright's errors carry a long call log: its first lines say what failed.
    const text = e instanceof Failure ? e.message : String(e.stack).split('\n').slice(0, 4).join('\n');
    process.stderr.write(`observer test FAILED: ${text}\n`);
    process.exit(1);
  },
);
