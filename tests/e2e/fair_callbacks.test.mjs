// Customer callbacks are shared fairly between accounts: an account whose
// callback_url never answers holds only its own slots (callback_per_account),
// its host's circuit breaker opens after a run of failures, and the callbacks
// an account may have waiting are capped.
import test from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { setup, waitUntil, metricSum } from './lib/harness.mjs';

/* A loopback server that accepts connections and never answers. */
async function tarpit() {
  const sockets = new Set();
  let total = 0;
  const server = net.createServer((s) => {
    total++;
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}/slow`,
    open: () => sockets.size,
    total: () => total,
    close: () => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(r); }),
  };
}

/* A receiver that records when each callback arrived. */
async function receiver() {
  const got = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      got.push({ at: Date.now(), json: JSON.parse(Buffer.concat(chunks).toString()) });
      res.writeHead(200);
      res.end();
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { got, url: `http://127.0.0.1:${server.address().port}/cb`, close: () => new Promise((r) => server.close(r)) };
}

async function sendMany(k, key, n, url, prefix) {
  const ids = [];
  for (let i = 0; i < n; i++) {
    const m = await k.send(key, { to: `+7916${prefix}${String(i).padStart(4, '0')}`, text: `m${i}`, callback_url: url });
    ids.push(m.id);
  }
  return ids;
}

test("one account's tarpit callback_url does not delay another account's callbacks", { timeout: 90000 }, async (t) => {
  const { k, key, finish } = await setup(t, { smsc: { autoReceipt: 'DELIVRD' } });
  const pit = await tarpit();
  const rx = await receiver();
  t.after(async () => { await pit.close(); await rx.close(); });
  // 100 messages of A: 200 callbacks that all wait for the tarpit.
  await sendMany(k, key, 100, pit.url, '100');
  await waitUntil(() => pit.open() >= 8, 'the tarpit to hold connections', 20000);
  // Every callback request kaskad has under way has reached the tarpit.
  await waitUntil(async () => metricSum(await k.metrics(), 'kaskad_callbacks_inflight') === pit.open(),
    'each request in flight to hold a connection', 10000, 50);
  assert.ok(pit.open() <= 8, `A holds at most its own 8 slots (holds ${pit.open()})`);
  // B's callbacks arrive while A's are stuck.
  const b = await k.createAccount();
  for (let i = 0; i < 3; i++) {
    const sent = await k.send(b.key, { to: `+7916200000${i}`, text: 'B', callback_url: rx.url });
    await k.waitStatus(b.key, sent.id, 'delivered');
    const seen = Date.now();
    await waitUntil(() => rx.got.filter((g) => g.json.id === sent.id).length >= 2,
      `B's callbacks of ${sent.id}`, 10000, 10);
    const last = Math.max(...rx.got.filter((g) => g.json.id === sent.id).map((g) => g.at));
    assert.ok(last - seen < 1000, `B's callback arrived ${last - seen} ms after its status`);
  }
  assert.ok(pit.open() <= 8, `A still holds at most 8 slots (holds ${pit.open()})`);
  await finish();
});

test("a host's circuit breaker opens after failures and sends nothing during the cool-down", { timeout: 60000 }, async (t) => {
  const { k, key, finish } = await setup(t, {
    smsc: { autoReceipt: 'DELIVRD' },
    args: ['--callback-timeout', '1s', '--callback-breaker', '3', '--callback-cooldown', '60s'],
  });
  const pit = await tarpit();
  t.after(() => pit.close());
  await sendMany(k, key, 10, pit.url, '300');
  await waitUntil(async () => metricSum(await k.metrics(), 'kaskad_callback_breaker_opens_total') >= 1,
    'the breaker to open', 20000, 200);
  await waitUntil(async () => metricSum(await k.metrics(), 'kaskad_callbacks_inflight') === 0,
    'the tries already on the wire to time out', 10000, 100);
  const before = pit.total();
  // Retries come due and are put off, not sent: the worker had work for the
  // host and held it back.
  const deferred = metricSum(await k.metrics(), 'kaskad_callbacks_deferred_total');
  await waitUntil(async () => metricSum(await k.metrics(), 'kaskad_callbacks_deferred_total') > deferred,
    'a waiting callback to be put off', 20000, 100);
  assert.equal(pit.total(), before, 'no request to the host while its breaker is open');
  const m = await k.metrics();
  assert.equal(metricSum(m, 'kaskad_callback_hosts_open'), 1);
  assert.ok(metricSum(m, 'kaskad_callbacks_deferred_total') > 0, 'waiting rows were put off');
  assert.match(k.stderr, /circuit open/);
  await finish();
});

test('callbacks waiting beyond callback_queue_per_account are dropped, oldest first, and counted', { timeout: 60000 }, async (t) => {
  const { k, key, finish } = await setup(t, {
    smsc: { autoReceipt: 'DELIVRD' },
    args: ['--callback-queue-per-account', '5', '--callback-per-account', '1'],
  });
  const pit = await tarpit();
  t.after(() => pit.close());
  await sendMany(k, key, 10, pit.url, '400');
  await waitUntil(async () => metricSum(await k.metrics(), 'kaskad_callbacks_dropped_total') >= 10,
    'waiting callbacks over the cap to be dropped', 20000, 250);
  assert.match(k.stderr, /waiting callbacks over the cap of 5 dropped/);
  await finish();
});
