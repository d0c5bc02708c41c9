// kaskad-sim's VK execute method on its own: several messages.send calls in
// one request, written as kaskad writes them ("return [API.messages.send({...}),
// ...];"), each handled as one messages.send would be (random_id dedupe,
// reach, injected errors, read callbacks, counters), and the request-wide
// errors (token, code that does not compile, more than 25 calls, HTTP 500).
import { describe, it, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { waitUntil } from './lib/harness.mjs';
import { Sim } from './lib/sim.mjs';

const TOKEN = 'vk-exec-token';
const CONFIRMATION = 'c0nf1rm';
const FAST = { deliver_ms: [5, 15], read_ms: [5, 15] };
const QUIET = { reach: 1, read: 0, throttle: 0, server_error: 0, fail: 0 };
const MSG_901 = "Can't send messages for users without permission";

/** The VK Callback API receiver: answers the confirmation, records events. */
class Receiver {
  constructor() { this.events = []; }

  async start() {
    this.server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        let json = null;
        try { json = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch { /* not JSON */ }
        if (json?.type === 'confirmation') {
          res.end(CONFIRMATION);
          return;
        }
        this.events.push(json);
        res.end('ok');
      });
    });
    await new Promise((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${this.server.address().port}/vk`;
    return this;
  }

  reads() { return this.events.filter((e) => e?.type === 'message_read'); }

  close() {
    this.server.closeAllConnections?.();
    return new Promise((r) => this.server.close(r));
  }
}

/** One call's parameters, as kaskad puts them in the code. */
function call(peer, rid, extra = {}) {
  return { peer_id: peer, random_id: rid, message: `hello ${peer}/${rid}`, intent: 'account_update', ...extra };
}

/** The code of an execute making these calls. */
function code(calls) {
  return `return [${calls.map((c) => `API.messages.send(${JSON.stringify(c)})`).join(',')}];`;
}

const sim = new Sim();
const rcv = new Receiver();

async function post(path, fields, headers = {}) {
  const r = await fetch(sim.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: typeof fields === 'string' ? fields : new URLSearchParams(fields).toString(),
    signal: AbortSignal.timeout(15000),
  });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, text, json };
}

const execute = (calls, token = TOKEN) =>
  post('/method/execute', { access_token: token, v: '5.199', code: typeof calls === 'string' ? calls : code(calls) });
const send = (peer, rid, message = 'single') =>
  post('/method/messages.send', { access_token: TOKEN, v: '5.199', peer_id: String(peer), random_id: String(rid), message });
const vkStats = async () => (await sim.stats()).vk;
const vkRequests = async () => (await sim.call('GET', '/channels/requests?channel=vk&limit=1000')).requests;

/** Asserts a whole-request error: HTTP 200 (VK's way) unless given, and the code. */
function assertError(r, errorCode, status = 200) {
  assert.equal(r.status, status, r.text);
  assert.ok(r.json?.error, r.text);
  assert.equal(r.json.error.error_code, errorCode, r.text);
  assert.equal(r.json.response, undefined);
  assert.ok(Array.isArray(r.json.error.request_params), r.text);
  assert.deepEqual(r.json.error.request_params[0], { key: 'method', value: 'execute' });
}

describe('kaskad-sim VK execute', () => {
  before(async () => {
    await rcv.start();
    await sim.start({ channels: { vk: FAST } });
  });

  after(async () => {
    try {
      await sim.stopClean();
    } finally {
      await rcv.close();
    }
  });

  beforeEach(async () => {
    await sim.call('POST', '/reset', { apps: true });
    await sim.config({ vk: { ...FAST, ...QUIET } });
    const app = await sim.addApp({ channel: 'vk', token: TOKEN, callback_url: rcv.url, secret: 'vks', group_id: 77, confirmation: CONFIRMATION });
    assert.equal(app.confirmed, true);
    rcv.events = [];
  });

  it('three calls answer three message ids; the request is recorded once, each call counted', async () => {
    const calls = [
      call(101, 1),
      call(102, 2, { message: 'Привет "}),API.messages.send({ 👋\n', keyboard: '{"inline":true,"buttons":[]}' }),
      call(103, 3),
    ];
    const r = await execute(calls);
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { response: [1, 2, 3] }, 'no execute_errors when every call succeeds');

    const recs = await vkRequests();
    assert.equal(recs.length, 1);
    assert.equal(recs[0].method, 'POST');
    assert.equal(recs[0].path, '/method/execute');
    assert.equal(recs[0].headers['content-type'], 'application/x-www-form-urlencoded');
    assert.equal(new URLSearchParams(recs[0].body).get('code'), code(calls));
    assert.equal(recs[0].outcome, 'accepted');

    const st = await vkStats();
    assert.equal(st.requests, 3);
    assert.equal(st.accepted, 3);
    assert.equal(st.messages, 3);
    assert.equal(st.duplicates, 0);

    const one = await send(104, 4);
    assert.deepEqual(one.json, { response: 4 }, 'message ids go on after a batch');
  });

  it('the token may come as a Bearer header; whitespace between the parts is allowed', async () => {
    const spaced = ` return\n[ API.messages.send ( ${JSON.stringify(call(1, 1))} ) ,\r\n\tAPI.messages.send(${JSON.stringify(call(2, 2), null, 2)})\n] ;\n`;
    const r = await post('/method/execute', { v: '5.199', code: spaced }, { authorization: `Bearer ${TOKEN}` });
    assert.deepEqual(r.json, { response: [1, 2] }, r.text);
  });

  it('a repeated random_id is deduped inside a batch and against messages.send', async () => {
    const before1 = await send(10, 100);
    assert.deepEqual(before1.json, { response: 1 });
    const r = await execute([call(10, 100), call(11, 100), call(11, 100), call(11, 101)]);
    assert.deepEqual(r.json, { response: [1, 2, 2, 3] }, r.text);
    const again = await execute([call(11, 101), call(12, 100)]);
    assert.deepEqual(again.json, { response: [3, 4] }, 'a repeated batch answers its ids again');
    const after1 = await send(12, 100);
    assert.deepEqual(after1.json, { response: 4 }, 'messages.send sees ids given in a batch');

    const st = await vkStats();
    assert.equal(st.messages, 4);
    assert.equal(st.accepted, 4);
    assert.equal(st.duplicates, 4);
    assert.equal(st.requests, 8);
  });

  it('an unreached recipient or a bad call gives false and its execute_errors entry, in order', async () => {
    await sim.config({ vk: { reach: 0.5 } });
    // Which peers the simulator reaches is fixed by the seed: ask messages.send.
    let reached;
    let unreached;
    for (let p = 1; p <= 64 && !(reached && unreached); p++) {
      const r = await send(p, 9000 + p);
      if (r.json.response !== undefined) reached ??= p;
      else if (r.json.error?.error_code === 901) unreached ??= p;
    }
    assert.ok(reached && unreached, 'a 0.5 reach splits 64 recipients');
    const sent = (await vkStats()).messages;

    const r = await execute([
      call(reached, 1),
      call(unreached, 2),
      call(reached, 3, { message: '' }),
      { peer_id: reached, message: 'no random_id' },
      call(reached, 4),
    ]);
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, {
      response: [sent + 1, false, false, false, sent + 2],
      execute_errors: [
        { method: 'messages.send', error_code: 901, error_msg: MSG_901 },
        { method: 'messages.send', error_code: 100, error_msg: 'One of the parameters specified was missing or invalid' },
        { method: 'messages.send', error_code: 100, error_msg: 'One of the parameters specified was missing or invalid' },
      ],
    });
    const single = await send(unreached, 2);
    assert.equal(single.json.error.error_code, 901, 'messages.send refuses the same recipient alike');

    const st = await vkStats();
    assert.equal(st.refused.bad_request, 2);
    assert.equal(st.messages, sent + 2);
    const last = (await vkRequests()).at(-2);
    assert.equal(last.path, '/method/execute');
    assert.equal(last.outcome, 'accepted', 'an execute that ran is recorded as accepted');
  });

  it('injected errors: throttle fails each call, server_error the whole request', async () => {
    const first = await execute([call(1, 1)]);
    assert.deepEqual(first.json, { response: [1] });

    await sim.config({ vk: { throttle: 1 } });
    const r = await execute([call(1, 1), call(2, 2), call(3, 3)]);
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, {
      response: [1, false, false],
      execute_errors: [
        { method: 'messages.send', error_code: 9, error_msg: 'Flood control' },
        { method: 'messages.send', error_code: 9, error_msg: 'Flood control' },
      ],
    }, 'a duplicate answers its id before any draw, as messages.send does');

    await sim.config({ vk: { throttle: 0, server_error: 1 } });
    const e = await execute([call(4, 4), call(5, 5)]);
    assertError(e, 10, 500);
    assert.deepEqual(e.json.error.request_params.find((p) => p.key === 'v'), { key: 'v', value: '5.199' });

    await sim.config({ vk: { server_error: 0 } });
    const ok = await execute([call(4, 4), call(5, 5)]);
    assert.deepEqual(ok.json, { response: [2, 3] }, 'nothing was sent by the failed request');

    const st = await vkStats();
    assert.equal(st.refused.throttled, 2);
    assert.equal(st.refused.server_error, 1, 'a request-wide error counts once');
    assert.equal(st.duplicates, 1);
    assert.equal(st.messages, 3);
    assert.deepEqual((await vkRequests()).map((x) => x.outcome),
      ['accepted', 'accepted', 'server_error', 'accepted']);
  });

  it('code that does not compile answers error 12', async () => {
    const good = code([call(1, 1), call(2, 2)]);
    const bad = [
      '',
      'return [];',
      'return;',
      good.slice(0, -1),                                    // no ';'
      `${good} return [];`,                                 // something after
      good.replace('return [', 'return ('),
      good.replace('return', 'RETURN'),
      good.replace('API.messages.send(', 'API.users.get('),
      good.replace('API.messages.send(', 'API.messages.send'),
      good.replace(',API', ';API'),
      good.replace(',API', ',,API'),
      good.replace('];', ',];'),
      'return [API.messages.send({peer_id:1,random_id:1,message:"x"})];',   // not JSON
      'return [API.messages.send({"peer_id":1,"random_id":1,"message":"x",})];',
      'return [API.messages.send({"peer_id":1,"peer_id":2,"random_id":1,"message":"x"})];',
      'return [API.messages.send([1,2,3])];',
      'return [API.messages.send("x")];',
      'return [API.messages.send({"peer_id":1,"random_id":1,"message":"x"}, 2)];',
      'return [API.messages.send({"peer_id":1,"random_id":1,"message":"x\u0000"})];',
      'return [API.messages.send({"message":"}"})};',
      '{'.repeat(5000),
      `return [API.messages.send(${'{"a":'.repeat(3000)}1${'}'.repeat(3000)})];`,
    ];
    for (const c of bad) {
      const r = await execute(c);
      assertError(r, 12);
      assert.equal(r.json.error.error_msg, 'Unable to compile code');
    }
    // Every proper prefix of a good code, and the code cut at a NUL byte.
    for (let i = 0; i < good.length; i++) assertError(await execute(good.slice(0, i)), 12);
    const nul = await post('/method/execute', `access_token=${TOKEN}&code=${encodeURIComponent(good.slice(0, 30))}%00${encodeURIComponent(good.slice(30))}`);
    assertError(nul, 12);
    const missing = await post('/method/execute', { access_token: TOKEN, v: '5.199' });
    assertError(missing, 100);

    const st = await vkStats();
    assert.equal(st.messages, 0, 'nothing is sent');
    assert.equal(st.refused.bad_request, bad.length + good.length + 2);
    assert.equal(st.requests, bad.length + good.length + 2, 'each refused execute counts once');
    assert.deepEqual((await execute(good)).json, { response: [1, 2] }, 'the simulator is still fine');
  });

  it('more than 25 calls answer error 13; 25 calls run', async () => {
    const calls = (n) => Array.from({ length: n }, (_, i) => call(1000 + i, i + 1));
    const r = await execute(calls(26));
    assertError(r, 13);
    assert.equal(r.json.error.error_msg, 'Runtime error occurred during code invocation: too many API calls');
    const many = await execute(calls(500));
    assertError(many, 13);
    const broken = await execute(`${code(calls(26)).slice(0, -2)},API.messages.send({)];`);
    assertError(broken, 12);
    assert.equal((await vkStats()).messages, 0);

    const ok = await execute(calls(25));
    assert.deepEqual(ok.json, { response: Array.from({ length: 25 }, (_, i) => i + 1) });
  });

  it('a wrong or missing token answers error 5', async () => {
    const r = await execute([call(1, 1)], 'not-the-token');
    assertError(r, 5);
    assert.equal(r.json.error.error_msg, 'User authorization failed: invalid access_token');
    const none = await post('/method/execute', { v: '5.199', code: code([call(1, 1)]) });
    assertError(none, 5);
    const badCodeToo = await execute('nonsense', 'not-the-token');
    assertError(badCodeToo, 5);   // the token is checked before the code

    const st = await vkStats();
    assert.equal(st.refused.unauthorized, 3);
    assert.equal(st.messages, 0);
    assert.deepEqual((await vkRequests()).map((x) => x.outcome), ['unauthorized', 'unauthorized', 'unauthorized']);
  });

  it('messages sent through execute get their message_read callbacks', async () => {
    await sim.config({ vk: { read: 1 } });
    const r = await execute([call(201, 1), call(202, 2), call(203, 3), call(203, 3)]);
    assert.deepEqual(r.json, { response: [1, 2, 3, 3] });
    const reads = await waitUntil(() => (rcv.reads().length >= 3 ? rcv.reads() : null), '3 message_read events');
    const byPeer = Object.fromEntries(reads.map((e) => [e.object.peer_id, e.object.read_message_id]));
    assert.deepEqual(byPeer, { 201: 1, 202: 2, 203: 3 });
    for (const e of reads) {
      assert.equal(e.group_id, 77);
      assert.equal(e.secret, 'vks');
      assert.equal(e.v, '5.199');
      assert.equal(e.object.from_id, e.object.peer_id);
      assert.match(e.event_id, /^[0-9a-f]{32}$/);
    }
    await waitUntil(async () => (await vkStats()).callbacks_ok === 3, 'callbacks counted');
    assert.equal(rcv.reads().length, 3, 'a duplicate call sends no second callback');
  });
});
