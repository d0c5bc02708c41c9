// Two kaskad nodes on one PostgreSQL database: the policy's state each holds
// in memory follows what the other changes within a second. A stop-list
// entry put through node A refuses the send on node B; a consent recorded
// through A lets B's advertising through and its withdrawal stops it again;
// a send counted on A against a frequency cap refuses B's next one. The
// time each took to reach B is printed (median of the rounds).
import test from 'node:test';
import assert from 'node:assert/strict';
import { sleep, waitUntil } from './lib/harness.mjs';
import { NODES_SKIP, twoNodes } from './lib/nodes.mjs';

const ROUNDS = 5;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

test('the stop-list, consents and caps changed on one node hold on the other within a second',
  { skip: NODES_SKIP, timeout: 120000 }, async (t) => {
    const { a, b, key } = await twoNodes(t);
    const send = (k, to, extra = {}) => k.request('POST', '/v1/messages',
      { key, body: { to, text: 'Ваш заказ готов', sender: 'KASKAD', ...extra } });
    const ad = { class: 'advertising', text: 'Скидка 20% до пятницы' };

    // Polls node B with probe() every 20 ms until it gives want; the time
    // from the change on A, which must be under a second.
    const until = async (what, t0, probe) => {
      for (;;) {
        const ms = Date.now() - t0;
        if (await probe()) return ms;
        assert.ok(ms < 1000, `${what}: node B still not changed after ${ms} ms`);
        await sleep(20);
      }
    };

    // The stop-list: put on A, refused on B; taken off on A, sent on B. A
    // complaint lets service messages through: transactional ones are sent.
    const stopMs = [], consentMs = [];
    const tr = { class: 'transactional' };
    for (let i = 0; i < ROUNDS; i++) {
      const P = `7916555${String(1000 + i)}`;
      let r = await send(b, P, tr);
      assert.equal(r.status, 202, r.text);
      let t0 = Date.now();
      r = await a.request('PUT', `/v1/stoplist/${P}`, { key, body: { reason: 'complaint' } });
      assert.ok([200, 201].includes(r.status), r.text);
      stopMs.push(await until('stop-list put', t0, async () => {
        const x = await send(b, P, tr);
        if (x.status === 422) assert.equal(x.json.error.code, 'stop_listed', x.text);
        return x.status === 422;
      }));
      t0 = Date.now();
      r = await a.request('DELETE', `/v1/stoplist/${P}`, { key });
      assert.ok([200, 204].includes(r.status), r.text);
      await until('stop-list delete', t0, async () => (await send(b, P, tr)).status === 202);
    }

    // Consents: recorded on A, advertising goes on B; withdrawn on A, refused on B.
    for (let i = 0; i < ROUNDS; i++) {
      const P = `7916556${String(1000 + i)}`;
      let r = await send(b, P, ad);
      assert.equal(r.json?.error?.code, 'no_consent', r.text);
      let t0 = Date.now();
      r = await a.request('PUT', `/v1/consents/${P}`, { key, body: { source: 'site-form' } });
      assert.equal(r.status, 201, r.text);
      consentMs.push(await until('consent put', t0, async () => (await send(b, P, ad)).status === 202));
      t0 = Date.now();
      r = await a.request('DELETE', `/v1/consents/${P}`, { key });
      assert.ok([200, 204].includes(r.status), r.text);
      await until('consent withdrawn', t0, async () => {
        const x = await send(b, P, ad);
        if (x.status === 422) assert.equal(x.json.error.code, 'no_consent', x.text);
        return x.status === 422;
      });
    }

    // A cap of one service message a day: the send on A counts on B. A probe
    // that is let through would count on B itself, so B is asked once, a
    // second after the send on A (and A once, a second after B's).
    let r = await a.request('PUT', '/v1/policy', { key, body: { caps: [{ class: 'service', max: 1, per: '1d' }] } });
    assert.equal(r.status, 200, r.text);
    await waitUntil(async () => {
      const p = await b.request('GET', '/v1/policy', { key });
      return p.status === 200 && (p.json.caps ?? []).length === 1;
    }, 'node B to know the policy', 5000, 50);
    for (let i = 0; i < ROUNDS; i++) {
      const P = `7916557${String(1000 + i)}`;
      r = await send(a, P);
      assert.equal(r.status, 202, r.text);
      await sleep(1000);
      r = await send(b, P);
      assert.equal(r.status, 422, `a cap counted on A, sent on B a second later: ${r.text}`);
      assert.equal(r.json.error.code, 'frequency_cap', r.text);
      const Q = `7916558${String(1000 + i)}`;
      r = await send(b, Q);
      assert.equal(r.status, 202, r.text);
      await sleep(1000);
      r = await send(a, Q);
      assert.equal(r.json?.error?.code, 'frequency_cap', r.text);
    }
    t.diagnostic(`median time to the other node: stop-list ${median(stopMs)} ms (${stopMs.join(', ')}),` +
      ` consent ${median(consentMs)} ms (${consentMs.join(', ')})`);
    for (const k of [a, b]) await k.stopClean();
  });
