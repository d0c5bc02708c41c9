// A request's state lives until the request ends: clients that go away
// while their answer is pending (a batch waiting for its commit), or before
// their body has arrived, leave the daemon serving, every such answer is
// still given (and counted), and nothing leaks (the sanitizer build checks
// at exit).
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { setup, metricSum, waitUntil } from './lib/harness.mjs';

/** Sends raw bytes to the daemon and closes the connection at once. */
function sendAndGo(port, bytes) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.write(bytes, () => {
        s.destroy();
        resolve();
      });
    });
    s.on('error', () => resolve());
  });
}

function post(path, key, body, { cut = 0 } = {}) {
  const payload = Buffer.from(JSON.stringify(body));
  const head = `POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\n`
    + `Content-Type: application/json\r\nContent-Length: ${payload.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head), cut ? payload.subarray(0, cut) : payload]);
}

test('clients that go away while their answer is pending leave the daemon serving', async (t) => {
  const env = await setup(t, { args: ['--rate_key', '0', '--rate_account', '0'], waitBound: false });
  const { k, key } = env;
  const accepted = async () => (await k.metrics()).get('kaskad_api_messages_accepted_total') ?? 0;
  const before = await accepted();

  // Batches that wait for a commit, their clients gone right after sending.
  const N = 12;
  const messages = Array.from({ length: 200 }, (_, i) => ({ to: `7916${String(1000000 + i)}`, text: `gone ${i}` }));
  await Promise.all(Array.from({ length: N }, () => sendAndGo(k.port, post('/v1/messages/batch', key, { messages }))));
  // Requests whose body never arrives whole.
  await Promise.all(Array.from({ length: 4 }, () =>
    sendAndGo(k.port, post('/v1/messages', key, { to: '79161234567', text: 'cut' }, { cut: 10 }))));

  // Every abandoned batch was still stored and answered (the answer counts
  // what it accepted) after its client left.
  await waitUntil(async () => (await accepted()) >= before + N * messages.length,
    'the abandoned batches to be answered');
  const m = await k.metrics();
  assert.ok(metricSum(m, 'kaskad_http_responses_total') >= N, 'the answers were counted');

  // The daemon still serves.
  assert.ok(await k.healthy());
  const ok = await k.request('POST', '/v1/messages', { key, body: { to: '79161234567', text: 'still here', sender: 'KASKAD' } });
  assert.equal(ok.status, 202, ok.text);
  // A clean stop: no request left pending, no leak, no sanitizer report.
  await env.finish();
});
