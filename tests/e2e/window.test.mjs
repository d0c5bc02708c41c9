// Flow control towards the SMSC: several sessions, the window, the rate limit.
import test from 'node:test';
import assert from 'node:assert/strict';
import { setup } from './lib/harness.mjs';

test('two sessions, window 3: never more than 3 unanswered submits per session', async (t) => {
  const { k, smsc, key, finish } = await setup(t, { route: { sessions: 2, window: 3 } });
  await k.waitRouteBound('main', 2);
  assert.equal(smsc.boundSessions().length, 2);
  smsc.handler = () => ({ status: 0, delayMs: 100 });
  const r = await k.call('POST', '/v1/messages/batch', {
    key,
    body: { messages: Array.from({ length: 30 }, (_, i) => ({ to: `7916124${String(1000 + i)}`, text: `win n=${i}` })) },
  }, 202);
  assert.equal(r.accepted, 30);
  await smsc.waitFor(() => smsc.submits.filter((s) => s.status === 0).length >= 30, 'all 30 answered', 20000);
  const perSession = new Map();
  for (const s of smsc.submits) perSession.set(s.sessionId, Math.max(perSession.get(s.sessionId) ?? 0, s.outstanding));
  assert.equal(perSession.size, 2, 'both sessions carried traffic');
  for (const [id, max] of perSession) {
    assert.ok(max <= 3, `session ${id}: ${max} unanswered submits, window is 3`);
  }
  assert.ok([...perSession.values()].some((m) => m === 3), 'the window is used in full');
  await finish();
});

test('max_sps limits the submit rate', async (t) => {
  const { k, smsc, key, finish } = await setup(t, { route: { max_sps: 20, window: 50 } });
  const r = await k.call('POST', '/v1/messages/batch', {
    key,
    body: { messages: Array.from({ length: 40 }, (_, i) => ({ to: `7916125${String(1000 + i)}`, text: `sps n=${i}` })) },
  }, 202);
  assert.equal(r.accepted, 40);
  await smsc.waitFor(() => smsc.submits.length >= 40, 'all 40 submitted', 20000);
  const span = smsc.submits[39].at - smsc.submits[0].at;
  // 40 submits at 20 per second, a small initial burst allowed: the last one
  // comes no earlier than ~1.7 s after the first.
  assert.ok(span >= 1700, `40 submits took only ${span} ms at max_sps 20`);
  // No one-second window holds much more than 20: the rate plus a burst of
  // a tenth of a second's worth, plus one for timer rounding.
  for (let i = 0; i < smsc.submits.length; i++) {
    const t0 = smsc.submits[i].at.getTime();
    const n = smsc.submits.filter((s) => s.at.getTime() >= t0 && s.at.getTime() < t0 + 1000).length;
    assert.ok(n <= 23, `${n} submits within one second from submit ${i} at max_sps 20`);
  }
  await finish();
});
