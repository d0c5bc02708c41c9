// Status callbacks reach the customer signed with the account's secret and
// are retried; MO messages are stored and answered; a slow or half-sent HTTP
// request is cut off by the timeout without disturbing anyone else.
import test from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { createHmac } from 'node:crypto';
import { setup, sleep, waitUntil, metricSum } from './lib/harness.mjs';

/* A local receiver that records callbacks and answers 500 to the first
   `failFirst` requests. */
async function receiver(failFirst = 0) {
  const got = [];
  let n = 0;
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      n++;
      got.push({ headers: req.headers, body: Buffer.concat(chunks).toString(), answered: n <= failFirst ? 500 : 200 });
      res.writeHead(n <= failFirst ? 500 : 200);
      res.end();
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { got, url: `http://127.0.0.1:${server.address().port}/hooks/kaskad`, close: () => new Promise((r) => server.close(r)) };
}

function verify(secret, headers, body) {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(headers['x-kaskad-signature'] ?? '');
  assert.ok(m, `signature header: ${headers['x-kaskad-signature']}`);
  const want = createHmac('sha256', secret).update(`${m[1]}.${body}`).digest('hex');
  assert.equal(m[2], want, 'signature verifies with the account secret');
  assert.ok(Math.abs(Date.now() / 1000 - Number(m[1])) < 60, 'timestamp is current');
}

test('send -> delivered with signed callbacks, retried after a failure', { timeout: 60000 }, async (t) => {
  const { k, key, finish } = await setup(t, { smsc: { autoReceipt: 'DELIVRD' } });
  const rx = await receiver(1);
  t.after(() => rx.close());
  const acct = await k.call('GET', '/v1/account', { key });
  const sent = await k.send(key, { to: '+79161230001', text: 'Order 42 shipped', callback_url: rx.url });
  await k.waitStatus(key, sent.id, 'delivered');
  // "sent" was refused once (500) and must come again; "delivered" once.
  await waitUntil(() => rx.got.filter((g) => g.answered === 200).length >= 2, 'two accepted callbacks', 30000);
  const ok = rx.got.filter((g) => g.answered === 200).map((g) => ({ ...g, json: JSON.parse(g.body) }));
  assert.deepEqual(ok.map((g) => g.json.status).sort(), ['delivered', 'sent']);
  for (const g of rx.got) {
    verify(acct.callback_secret, g.headers, g.body);
    assert.equal(g.headers['content-type'], 'application/json');
  }
  for (const g of ok) {
    assert.equal(g.json.id, sent.id);
    assert.equal(g.json.to, '79161230001');
    assert.equal(g.json.channel, 'sms');
  }
  assert.equal(rx.got.length, 3, 'one retry, no extra deliveries');
  // A forged signature does not verify with another account's secret.
  const other = await k.createAccount();
  const otherAcct = await k.call('GET', '/v1/account', { key: other.key });
  assert.throws(() => verify(otherAcct.callback_secret, rx.got[0].headers, rx.got[0].body));
  const m = await k.metrics();
  assert.equal(metricSum(m, 'kaskad_callbacks_sent_total'), 2);
  assert.equal(metricSum(m, 'kaskad_callback_failed_tries_total'), 1);
  await finish();
});

test('an MO deliver_sm is stored and answered', { timeout: 30000 }, async (t) => {
  const { k, smsc, finish } = await setup(t);
  const session = smsc.boundSessions()[0];
  const status = await new Promise((resolve, reject) => {
    const ok = session.deliver_sm({
      source_addr_ton: 1, source_addr_npi: 1, source_addr: '79161230002',
      dest_addr_ton: 5, dest_addr_npi: 0, destination_addr: 'KASKAD',
      esm_class: 0, data_coding: 8, short_message: Buffer.from('СТОП', 'utf16le').swap16(),
    }, (resp) => resolve(resp.command_status));
    if (!ok) reject(new Error('session not writable'));
  });
  assert.equal(status, 0, 'deliver_sm_resp ESME_ROK');
  const m = await k.metrics();
  assert.equal(metricSum(m, 'kaskad_mo_received_total'), 1);
  assert.match(k.stderr, /MO from 79161230002 to KASKAD/);
  await finish();
});

test('a half-sent request is closed by http_timeout; others are served meanwhile', { timeout: 30000 }, async (t) => {
  const { k, key, smsc, finish } = await setup(t, { args: ['--http-timeout', '2s'] });
  const sock = net.connect(k.port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  sock.write('POST /v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ' + key +
    '\r\nContent-Length: 200\r\n\r\n{"to":"+79161230003","te');
  const closed = new Promise((r) => sock.once('close', r));
  sock.on('error', () => {});
  const t0 = Date.now();
  // Meanwhile the daemon serves everyone else.
  const sent = await k.send(key, { to: '+79161230004', text: 'meanwhile' });
  assert.ok(sent.id);
  await closed;
  const waited = Date.now() - t0;
  assert.ok(waited >= 1500 && waited < 10000, `closed after ${waited} ms`);
  // The client's keep-alive connection from the send above idles out at the
  // same moment: let it go before the next request, rather than race it.
  await sleep(500);
  const list = await k.call('GET', '/v1/messages', { key });
  assert.deepEqual(list.messages.map((m) => m.to), ['79161230004'], 'nothing half-written');
  assert.ok(await k.healthy());
  await smsc.waitFor(() => smsc.submits.length === 1, 'the one complete message submitted');
  await finish();
});

test('a client dripping header bytes is cut off at http_timeout', { timeout: 30000 }, async (t) => {
  const { k, key, finish } = await setup(t, { args: ['--http-timeout', '2s'] });
  const sock = net.connect(k.port, '127.0.0.1');
  sock.on('error', () => {});
  await new Promise((r) => sock.once('connect', r));
  const closed = new Promise((r) => sock.once('close', r));
  const t0 = Date.now();
  const line = 'GET /healthz HTTP/1.1\r\nX-Slow: ' + 'a'.repeat(200);
  let i = 0;
  const drip = setInterval(() => { if (!sock.destroyed && i < line.length) sock.write(line[i++]); }, 200);
  t.after(() => clearInterval(drip));
  await closed;
  clearInterval(drip);
  const waited = Date.now() - t0;
  assert.ok(waited >= 1500 && waited < 6000, `closed after ${waited} ms while still sending`);
  await sleep(500);   /* the client's idle keep-alive connection times out just now too */
  await k.send(key, { to: '+79161230005', text: 'still serving' });
  assert.match(k.stderr, /did not arrive within/);
  await finish();
});

test('an announced body over the limit is refused before it is sent', { timeout: 20000 }, async (t) => {
  const { k, key, finish } = await setup(t);
  const sock = net.connect(k.port, '127.0.0.1');
  sock.on('error', () => {});
  await new Promise((r) => sock.once('connect', r));
  let answer = '';
  sock.on('data', (d) => { answer += d; });
  sock.write(`POST /v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\n` +
    'Content-Type: application/json\r\nContent-Length: 5000000\r\n\r\n');
  await waitUntil(() => answer.includes('\r\n\r\n'), 'an answer without sending the body', 5000);
  assert.match(answer, /^HTTP\/1\.1 413 /);
  assert.match(answer, /body_too_large/);
  sock.destroy();
  await finish();
});
