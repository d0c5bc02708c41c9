// Route choice: a message's SMS goes to the cheapest route that serves its
// operator (from the numbering register, or the HLR/MNP answer) and its lane
// and is up (a route may price its lanes apart, or serve bulk only); a
// route whose SMSC is gone fails over to the next and gets the
// traffic back when it is bound again; the route and its price are on the
// attempt; a run of the route's own errors (system errors, not invalid
// numbers) takes it down for route_down; an account's own sms_route still
// wins; advertising to a roaming
// subscriber is deferred (roaming_ads).
import test from 'node:test';
import assert from 'node:assert/strict';
import { waitUntil } from './lib/harness.mjs';
import { STATUS, startSmsc } from './lib/smsc.mjs';
import { Sim } from './lib/sim.mjs';
import { MEGAFON, MEGAFON_PHONE, MTS, MTS_PHONE, twoRoutes as routes } from './lib/routes.mjs';

/** Routes a and b: a cheap for МТС, dear for the rest; b the other way round. */
const twoRoutes = (t, { args = [], a = {}, b = {} } = {}) => routes(t, {
  args: ['--route_down', '1s', ...args],
  a: { prices: { default: 3.0, operators: { [MTS]: 1.5 } }, ...a },
  b: { prices: { default: 2.0, operators: { [MTS]: 2.5 } }, ...b },
});

const sms = (to, text, cls = 'transactional') => ({ to, text, sender: 'KASKAD', class: cls });

test('routes: the cheapest route per operator; route and price on the attempt', async (t) => {
  const { k, smscA, smscB, acct, key } = await twoRoutes(t);
  const r = await k.route('a');
  assert.deepEqual(r.prices, { default: 3, operators: { [MTS]: 1.5 } });
  assert.equal(r.lane, 'both');
  const m1 = await k.send(key, sms(MTS_PHONE, 'to mts'));
  const m2 = await k.send(key, sms(MEGAFON_PHONE, 'to megafon'));
  await smscA.waitFor(() => smscA.submits.some((s) => s.text === 'to mts'), 'МТС on route a');
  await smscB.waitFor(() => smscB.submits.some((s) => s.text === 'to megafon'), 'МегаФон on route b');
  const a1 = (await k.waitStatus(key, m1.id, ['sent', 'delivered'])).attempts[0];
  assert.equal(a1.route, 'a');
  assert.equal(a1.price, 1.5);
  const a2 = (await k.waitStatus(key, m2.id, ['sent', 'delivered'])).attempts[0];
  assert.equal(a2.route, 'b');
  assert.equal(a2.price, 2);
  // A lane the cheap route does not serve: advertising goes to the one that does.
  await k.putRoute('a', smscA.routeConfig({ lane: 'stream', prices: { default: 3.0, operators: { [MTS]: 1.5 } } }));
  await smscA.waitFor(() => smscA.boundSessions().length >= 1, 'route a to bind again');
  await k.consent(key, [MTS_PHONE]);
  const m3 = await k.send(key, sms(MTS_PHONE, 'mts promo', 'advertising'));
  await smscB.waitFor(() => smscB.submits.some((s) => s.text === 'mts promo'), 'advertising on route b');
  assert.equal((await k.waitStatus(key, m3.id, ['sent', 'delivered'])).attempts[0].price, 2.5);
  // The account's own route wins over the price.
  await k.call('PATCH', `/v1/accounts/${acct.id}`, { body: { sms_route: 'b' } }, 200);
  const m4 = await k.send(key, sms(MTS_PHONE, 'pinned'));
  await smscB.waitFor(() => smscB.submits.some((s) => s.text === 'pinned'), 'the account route');
  const a4 = (await k.waitStatus(key, m4.id, ['sent', 'delivered'])).attempts[0];
  assert.equal(a4.route, 'b');
  assert.ok(!smscA.submits.some((s) => s.text === 'pinned'));
  await k.stopClean();
});

test('routes: failover when the cheap route\'s SMSC is down, and back when it returns', async (t) => {
  const { k, smscA, smscB, key } = await twoRoutes(t, { a: { reconnect_min_ms: 100, reconnect_max_ms: 300 } });
  const m1 = await k.send(key, sms(MTS_PHONE, 'before'));
  await smscA.waitFor(() => smscA.submits.some((s) => s.text === 'before'), 'route a');
  await k.waitStatus(key, m1.id, ['sent', 'delivered']);
  // The cheap route's SMSC goes away: after route_down (1 s) it is down.
  const port = smscA.port;
  await smscA.close();
  const start = Date.now();
  let down;
  while (Date.now() - start < 10000) {
    down = await k.route('a');
    if (down.up === false) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(down.up, false, 'route a is down');
  const m2 = await k.send(key, sms(MTS_PHONE, 'during'));
  await smscB.waitFor(() => smscB.submits.some((s) => s.text === 'during'), 'failover to route b');
  const a2 = (await k.waitStatus(key, m2.id, ['sent', 'delivered'])).attempts[0];
  assert.equal(a2.route, 'b');
  assert.equal(a2.price, 2.5);
  // Back on the same port: route a binds again and gets МТС again.
  const again = await startSmscOn(port);
  t.after(() => again.close());
  await again.waitFor(() => again.boundSessions().length >= 1, 'route a to bind again', 15000);
  const m3 = await k.send(key, sms(MTS_PHONE, 'after'));
  await again.waitFor(() => again.submits.some((s) => s.text === 'after'), 'route a again');
  assert.equal((await k.waitStatus(key, m3.id, ['sent', 'delivered'])).attempts[0].route, 'a');
  await k.stopClean();
});

test('routes: a run of system errors takes a route down, and traffic goes to the next until route_down ends; invalid numbers do not', { timeout: 60000 }, async (t) => {
  const { k, smscA, smscB, key } = await twoRoutes(t, { args: ['--route_down', '3s', '--retry_min', '500ms'] });
  // Five invalid destinations in a row: the numbers' fault, not the route's.
  const bad = Array.from({ length: 5 }, (_, i) => `7916555000${i}`);
  for (const to of bad) smscA.forDest(to, { status: STATUS.ESME_RINVDSTADR });
  const failed = await Promise.all(bad.map((to) => k.send(key, sms(to, `bad ${to}`))));
  for (const m of failed) {
    const done = await k.waitStatus(key, m.id, 'failed');
    assert.equal(done.attempts[0].route, 'a');
  }
  assert.equal((await k.route('a')).up, true, 'five invalid numbers leave the route up');
  const ok = await k.send(key, sms(MTS_PHONE, 'still a'));
  await smscA.waitFor(() => smscA.submits.some((s) => s.text === 'still a'), 'route a still used');
  await k.waitStatus(key, ok.id, ['sent', 'delivered']);
  // Five system errors in a row: route a is down; the messages are tried
  // again on b, and so is what comes next.
  smscA.queue(...Array.from({ length: 5 }, () => ({ status: STATUS.ESME_RSYSERR })));
  const hit = await Promise.all(Array.from({ length: 5 }, (_, i) => k.send(key, sms(`7916555100${i}`, `syserr ${i}`))));
  await smscA.waitFor(() => smscA.submits.filter((s) => s.text.startsWith('syserr')).length === 5, 'five submits on a');
  // (the SMSC has seen them; kaskad reads the answers a moment later)
  await waitUntil(async () => (await k.route('a')).up === false, 'route a down after five system errors', 5000, 20);
  const next = await k.send(key, sms(MTS_PHONE, 'while a is down'));
  await smscB.waitFor(() => smscB.submits.some((s) => s.text === 'while a is down'), 'the next route');
  const during = (await k.waitStatus(key, next.id, ['sent', 'delivered'])).attempts[0];
  assert.equal(during.route, 'b');
  assert.equal(during.price, 2.5);
  for (const m of hit) await k.waitStatus(key, m.id, ['sent', 'delivered']);
  assert.equal(smscB.submits.filter((s) => s.text.startsWith('syserr')).length, 5, 'tried again on b');
  assert.equal(smscA.submits.filter((s) => s.text.startsWith('syserr')).length, 5, 'not again on a');
  // After route_down, a is up again and gets МТС back.
  await waitUntil(async () => (await k.route('a')).up === true, 'route a up again', 10000, 100);
  const back = await k.send(key, sms(MTS_PHONE, 'a again'));
  await smscA.waitFor(() => smscA.submits.some((s) => s.text === 'a again'), 'route a again');
  assert.equal((await k.waitStatus(key, back.id, ['sent', 'delivered'])).attempts[0].route, 'a');
  await k.stopClean();
});

test('routes: prices per lane within one route; the attempt has its lane\'s price', async (t) => {
  // a serves both lanes: cheap for codes, dear for advertising except to
  // МегаФон; b one price for everything
  const { k, smscA, smscB, key } = await twoRoutes(t, {
    a: { prices: { default: { stream: 1.5, bulk: 3.0 }, operators: { [MEGAFON]: { bulk: 1.0 } } } },
    b: { prices: { default: 2.0 } },
  });
  const r = await k.route('a');
  assert.equal(r.lane, 'both');
  assert.deepEqual(r.prices, { default: { stream: 1.5, bulk: 3 }, operators: { [MEGAFON]: { bulk: 1 } } });
  await k.consent(key, [MTS_PHONE, MEGAFON_PHONE]);
  const cases = [
    [MTS_PHONE, 'mts code', 'transactional', 'a', 1.5],
    [MTS_PHONE, 'mts promo', 'advertising', 'b', 2],
    [MEGAFON_PHONE, 'megafon promo', 'advertising', 'a', 1],
    [MEGAFON_PHONE, 'megafon code', 'service', 'a', 1.5],
  ];
  for (const [to, text, cls, route, price] of cases) {
    const m = await k.send(key, sms(to, text, cls));
    const smsc = route === 'a' ? smscA : smscB;
    await smsc.waitFor(() => smsc.submits.some((s) => s.text === text), `${text} on route ${route}`);
    const att = (await k.waitStatus(key, m.id, ['sent', 'delivered'])).attempts[0];
    assert.deepEqual([att.route, att.price], [route, price], text);
  }
  // A lane's price must be a price.
  const bad = await k.request('PUT', '/v1/routes/c', { body: smscB.routeConfig({ prices: { default: { stream: 1, fast: 2 } } }) });
  assert.equal(bad.status, 422, bad.text);
  await k.stopClean();
});

test('routes: a bulk-only route takes advertising, never service or transactional', async (t) => {
  const { k, smscA, smscB, key } = await twoRoutes(t, {
    a: { prices: { default: 3.0 } },
    b: { lane: 'bulk', prices: { default: 0.5 } },
  });
  assert.equal((await k.route('b')).lane, 'bulk');
  await k.consent(key, [MTS_PHONE, MEGAFON_PHONE]);
  const promo = await k.send(key, sms(MTS_PHONE, 'bulk promo', 'advertising'));
  const code = await k.send(key, sms(MTS_PHONE, 'bulk code', 'transactional'));
  const svc = await k.send(key, sms(MEGAFON_PHONE, 'bulk service', 'service'));
  await smscB.waitFor(() => smscB.submits.some((s) => s.text === 'bulk promo'), 'advertising on the bulk route');
  await smscA.waitFor(() => smscA.submits.some((s) => s.text === 'bulk code') &&
    smscA.submits.some((s) => s.text === 'bulk service'), 'service and transactional elsewhere');
  const p = (await k.waitStatus(key, promo.id, ['sent', 'delivered'])).attempts[0];
  assert.deepEqual([p.route, p.price], ['b', 0.5]);
  for (const m of [code, svc]) {
    const a = (await k.waitStatus(key, m.id, ['sent', 'delivered'])).attempts[0];
    assert.deepEqual([a.route, a.price], ['a', 3]);
  }
  await k.settled(key);
  assert.ok(!smscB.submits.some((s) => s.text === 'bulk code' || s.text === 'bulk service'));
  await k.stopClean();
});

/** An SMSC on a given port (the one a route points at). */
async function startSmscOn(port) {
  const s = await startSmsc();
  await new Promise((r) => s.server.close(() => r()));
  await new Promise((resolve, reject) => {
    s.server.once('error', reject);
    s.server.listen(port, '127.0.0.1', () => resolve());
  });
  s.port = port;
  return s;
}

test('routes: a ported number goes by its HLR answer; roaming advertising is deferred', async (t) => {
  const sim = new Sim();
  t.after(() => sim.stop());
  await sim.start();
  const { k, smscA, smscB, acct, key } = await twoRoutes(t, { args: ['--hlr_url', `${sim.url}/hlr`] });
  const ported = '79161112233';     // the register: МТС; moved to МегаФон
  const roaming = '79161114455';
  await sim.call('POST', '/hlr/config', {
    ported: { [ported]: { operator: 'ПАО "МегаФон"', inn: MEGAFON } }, roaming: [roaming],
  });
  const m1 = await k.send(key, sms(ported, 'ported'));
  await smscB.waitFor(() => smscB.submits.some((s) => s.text === 'ported'), 'the ported number on route b');
  const a1 = (await k.waitStatus(key, m1.id, ['sent', 'delivered'])).attempts[0];
  assert.equal(a1.route, 'b');
  assert.equal(a1.price, 2);
  // Not ported: the register's operator, route a.
  const m2 = await k.send(key, sms(MTS_PHONE, 'not ported'));
  await smscA.waitFor(() => smscA.submits.some((s) => s.text === 'not ported'), 'route a');
  // Roaming: advertising waits (the default, defer), a code does not.
  assert.equal((await k.call('GET', `/v1/accounts/${acct.id}`, {}, 200)).roaming_ads, 'defer');
  await k.consent(key, [roaming]);
  const ad = await k.send(key, sms(roaming, 'roaming promo', 'advertising'));
  const otp = await k.send(key, sms(roaming, 'roaming code', 'transactional'));
  await smscA.waitFor(() => smscA.submits.some((s) => s.text === 'roaming code'), 'the code to a roaming subscriber');
  const deferred = await waitFor(async () => {
    const m = await k.message(key, ad.id);
    return m.attempts[0].error && /roaming/.test(m.attempts[0].error) ? m : null;
  });
  assert.equal(deferred.finished, false);
  assert.ok(![...smscA.submits, ...smscB.submits].some((s) => s.text === 'roaming promo'), 'not sent');
  await k.waitStatus(key, otp.id, ['sent', 'delivered']);
  await k.waitStatus(key, m2.id, ['sent', 'delivered']);
  // drop: refused for good
  await k.call('PATCH', `/v1/accounts/${acct.id}`, { body: { roaming_ads: 'drop' } }, 200);
  const bad = await k.request('PATCH', `/v1/accounts/${acct.id}`, { body: { roaming_ads: 'maybe' } });
  assert.equal(bad.status, 422);
  assert.equal(bad.json.error.code, 'invalid_roaming_ads');
  const ad2 = await k.send(key, sms(roaming, 'dropped promo', 'advertising'));
  const dropped = await k.waitStatus(key, ad2.id, ['failed']);
  assert.match(dropped.attempts[0].error, /roaming/);
  await k.stopClean();
});

async function waitFor(fn, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}
