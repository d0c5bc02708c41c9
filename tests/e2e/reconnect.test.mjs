// Sessions that break: response timeouts, dropped connections, refused binds.
import test from 'node:test';
import assert from 'node:assert/strict';
import { setup, waitUntil } from './lib/harness.mjs';
import { STATUS } from './lib/smsc.mjs';

test('no submit_sm_resp within resp_timeout: rebind and resend once', async (t) => {
  const { k, smsc, key, finish } = await setup(t, {
    route: { resp_timeout_ms: 1000, reconnect_min_ms: 100 },
  });
  smsc.forDest('79161230601', { noResponse: true });
  const r = await k.send(key, { to: '79161230601', text: 'silent smsc' });
  await k.waitStatus(key, r.id, 'sent', 15000);
  const subs = smsc.submits.filter((s) => s.destination_addr === '79161230601');
  assert.equal(subs.length, 2, 'resent once after the timeout');
  assert.equal(subs[0].status, null, 'the first was never answered');
  assert.equal(subs[1].status, 0);
  assert.notEqual(subs[0].sessionId, subs[1].sessionId, 'the resend went on a new session');
  assert.ok(subs[1].at - subs[0].at >= 900, `the session waited about resp_timeout (${subs[1].at - subs[0].at} ms)`);
  assert.ok(smsc.binds.length >= 2, 'kaskad bound again');
  await finish();
});

test('connection dropped with submits in flight: resent after reconnect, accepted once', async (t) => {
  const { k, smsc, key, finish } = await setup(t, {
    smsc: { autoReceipt: 'DELIVRD' },
    route: { reconnect_min_ms: 100, window: 10 },
  });
  // Hold the first five submits unanswered, then cut the connection.
  for (let i = 0; i < 5; i++) smsc.queue({ noResponse: true });
  const ids = [];
  for (let i = 0; i < 8; i++) ids.push((await k.send(key, { to: `7916123070${i}`, text: `drop n=${i}` })).id);
  await smsc.waitFor(() => smsc.submits.filter((s) => s.status === null).length >= 5, 'five held submits');
  smsc.dropSessions();
  for (const id of ids) await k.waitStatus(key, id, 'delivered', 15000);
  for (let i = 0; i < 8; i++) {
    const ok = smsc.submits.filter((s) => s.text === `drop n=${i}` && s.status === 0);
    assert.equal(ok.length, 1, `n=${i} accepted exactly once`);
  }
  assert.ok(smsc.binds.length >= 2, 'kaskad reconnected');
  await finish();
});

test('refused bind, then the route is fixed with PUT: queued messages go out', async (t) => {
  const { k, smsc, key, finish } = await setup(t, {
    smsc: { systemId: 'right', password: 'good' },
    route: { system_id: 'right', password: 'bad', reconnect_min_ms: 100 },
    waitBound: false,
  });
  await smsc.waitFor(() => smsc.binds.length >= 2, 'kaskad to retry its bind');
  const route = await k.route('main');
  assert.equal(route.state.bound, 0, 'no bound session with a wrong password');
  const r = await k.send(key, { to: '79161230801', text: 'waiting for a bind' });
  const m = await k.message(key, r.id);
  assert.ok(['accepted', 'sending'].includes(m.status), `still waiting: ${m.status}`);
  assert.ok(await k.healthy());

  await k.putRoute('main', smsc.routeConfig({ system_id: 'right', password: 'good', reconnect_min_ms: 100 }));
  await k.waitRouteBound('main');
  await k.waitStatus(key, r.id, 'sent');
  assert.equal(smsc.submits.length, 1);
  await finish();
});

test('routes: list, delete, re-create', async (t) => {
  const { k, smsc, key, finish } = await setup(t, { smsc: { autoReceipt: 'DELIVRD' } });
  const list = await k.call('GET', '/v1/routes', {}, 200);
  const routes = Array.isArray(list) ? list : list.routes;
  assert.equal(routes.length, 1);
  assert.equal(routes[0].name, 'main');
  assert.equal(routes[0].port, smsc.port);
  assert.ok(!('password' in routes[0]) || routes[0].password !== smsc.routeConfig().password,
    'the route password is not shown');

  const del = await k.request('DELETE', '/v1/routes/main');
  assert.ok([200, 204].includes(del.status), `DELETE -> ${del.status}`);
  await smsc.waitFor(() => smsc.boundSessions().length === 0, 'the session to close');
  assert.ok(smsc.unbinds.length >= 1, 'unbind on route deletion');
  // Without any route a message is refused, not silently parked.
  const none = await k.request('POST', '/v1/messages', { key, body: { to: '79161230901', text: 'no route yet' } });
  assert.equal(none.status, 503, none.text);
  assert.equal(none.json?.error?.code, 'no_route');
  await k.putRoute('main', smsc.routeConfig());
  const r = await k.send(key, { to: '79161230901', text: 'route is back' });
  await k.waitStatus(key, r.id, 'delivered');
  const notFound = await k.request('DELETE', '/v1/routes/nope');
  assert.equal(notFound.status, 404);
  await finish();
});

test('throttled answers do not count as errors in the route state', async (t) => {
  const { k, smsc, key, finish } = await setup(t, { route: { throttle_pause_ms: 50 } });
  smsc.queue({ status: STATUS.ESME_RTHROTTLED });
  const r = await k.send(key, { to: '79161231001', text: 'x' });
  await k.waitStatus(key, r.id, 'sent');
  const route = await waitUntil(async () => {
    const x = await k.route('main');
    return x.state.submitted >= 1 ? x : null;
  }, 'submitted counter');
  assert.equal(route.state.throttled, 1);
  assert.equal(route.state.errors, 0);
  await finish();
});
