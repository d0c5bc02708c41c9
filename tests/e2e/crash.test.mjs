// No acknowledged message is lost when kaskad is killed with SIGKILL while
// accepting and submitting: after a restart on the same data, every message
// that got a 202 reaches the SMSC, and resends are bounded by what was in
// flight at the kill.
import test from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { setup, kaskadBin, ROOT } from './lib/harness.mjs';

const TOTAL = 20000;
const BATCH = 200;
const PARALLEL = 4;
const KILL_AFTER = 6000;      // acknowledged messages before the kill
const WINDOW = 50;

test('kill -9 during a 20,000-message load loses no acknowledged message', { timeout: 150000 }, async (t) => {
  const bin = kaskadBin();
  const { k, smsc, key, finish } = await setup(t, {
    bin,
    args: ['--sync', 'full'],
    route: { window: WINDOW, sessions: 1, resp_timeout_ms: 5000 },
  });
  const log = (s) => console.log(`crash: ${s}`);
  log(`binary ${path.relative(ROOT, bin)}`);

  const acked = new Map();    // index -> message id
  let next = 0;
  let killed = false;
  let killedAt = null;
  let transportErrors = 0;
  let refused = 0;
  const t0 = Date.now();

  let onKillPoint;
  const killPoint = new Promise((r) => { onKillPoint = r; });

  async function sender() {
    while (!killed && next < TOTAL) {
      const start = next;
      next += BATCH;
      const messages = [];
      for (let i = start; i < Math.min(start + BATCH, TOTAL); i++) {
        messages.push({ to: `79${String(100000000 + i)}`, text: `crash n=${i}`, sender: 'KASKAD' });
      }
      let r;
      try {
        r = await k.request('POST', '/v1/messages/batch', { key, body: { messages }, timeoutMs: 30000 });
      } catch {
        transportErrors++;
        continue;              // no answer: nothing was acknowledged
      }
      if (r.status !== 202) {
        if (!killed) refused++;
        continue;
      }
      for (const res of r.json.results) {
        if (res.id) acked.set(start + res.index, res.id);
      }
      if (acked.size >= KILL_AFTER) onKillPoint();
    }
    onKillPoint();
  }

  const senders = Array.from({ length: PARALLEL }, () => sender());
  await killPoint;
  const routeBefore = await k.route('main').catch(() => null);
  const metBefore = await k.metrics().catch(() => null);
  killed = true;
  await k.kill9();
  killedAt = Date.now();
  const ackedAtKill = acked.size;
  const submitsAtKill = smsc.submits.length;
  await Promise.all(senders);
  log(`acknowledged ${ackedAtKill} in ${killedAt - t0} ms; SMSC had ${submitsAtKill} submit_sm at the kill; ` +
    `route inflight ${routeBefore?.state?.inflight} queued ${routeBefore?.state?.queued} just before`);
  if (metBefore) {
    const g = (n) => metBefore.get(n);
    const commits = g('kaskad_store_commit_seconds_count');
    log(`store just before the kill: pending ${g('kaskad_store_pending')}, ` +
      `${commits} commits, mean commit ${commits ? ((g('kaskad_store_commit_seconds_sum') / commits) * 1000).toFixed(1) : '?'} ms, ` +
      `mean batch ${g('kaskad_store_batch_size_count') ? (g('kaskad_store_batch_size_sum') / g('kaskad_store_batch_size_count')).toFixed(1) : '?'} operations`);
  }
  assert.equal(refused, 0, 'no batch refused before the kill');
  assert.ok(ackedAtKill >= KILL_AFTER, 'enough messages acknowledged before the kill');

  await k.restart(30000);
  log(`restarted in ${Date.now() - killedAt} ms`);

  // Wait until every acknowledged message has reached the SMSC.
  const want = new Set(acked.keys());
  const seen = new Map();    // index -> submit_sm count
  let scanned = 0;
  const scan = () => {
    for (; scanned < smsc.submits.length; scanned++) {
      const m = /^crash n=(\d+)$/.exec(smsc.submits[scanned].text);
      if (!m) continue;
      const i = Number(m[1]);
      seen.set(i, (seen.get(i) ?? 0) + 1);
    }
    let missing = 0;
    for (const i of want) if (!seen.has(i)) missing++;
    return missing;
  };
  let missing = scan();
  const deadline = Date.now() + 60000;
  while (missing > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    missing = scan();
  }
  // Let in-flight answers settle before counting duplicates.
  await smsc.waitFor(() => smsc.submits.every((s) => s.status !== null || s.session.kk.closed),
    'every submit_sm answered', 15000).catch(() => {});
  scan();

  let received = 0;
  let twice = 0;
  let maxCopies = 0;
  for (const i of want) {
    const c = seen.get(i) ?? 0;
    if (c > 0) received++;
    if (c > 1) twice++;
    if (c > maxCopies) maxCopies = c;
  }
  let unackedSubmitted = 0;
  for (const i of seen.keys()) if (!want.has(i)) unackedSubmitted++;
  log(`acknowledged=${want.size} received=${received} received_twice=${twice} ` +
    `max_copies=${maxCopies} submitted_but_not_acknowledged=${unackedSubmitted} ` +
    `total_submit_sm=${smsc.submits.length} batch_transport_errors=${transportErrors} ` +
    `done ${Date.now() - t0} ms after the start`);

  // Where the duplicates come from: the first copy's position and age at the kill.
  const firstAt = new Map();
  for (let j = 0; j < submitsAtKill; j++) {
    const m = /^crash n=(\d+)$/.exec(smsc.submits[j].text);
    if (m && !firstAt.has(Number(m[1]))) firstAt.set(Number(m[1]), j);
  }
  let oldestPos = submitsAtKill;
  for (const [i, c] of seen) if (c > 1 && firstAt.has(i)) oldestPos = Math.min(oldestPos, firstAt.get(i));
  if (twice > 0 && oldestPos < submitsAtKill) {
    const s0 = smsc.submits[oldestPos];
    log(`resent messages were among the last ${submitsAtKill - oldestPos} submit_sm before the kill; ` +
      `the oldest was first submitted ${killedAt - s0.at.getTime()} ms before it`);
  }

  const lost = [...want].filter((i) => !seen.has(i));
  assert.equal(lost.length, 0,
    `${lost.length} acknowledged messages never reached the SMSC, e.g. n=${lost.slice(0, 10).join(',')}`);
  assert.ok(twice <= 200, `duplicates (${twice}) must be bounded by what was in flight at the kill`);
  assert.ok(maxCopies <= 2, `no message sent more than twice (max ${maxCopies})`);

  // A sample of acknowledged messages is readable and has reached sent.
  const sample = [...acked.entries()].filter((_, j) => j % Math.ceil(acked.size / 20) === 0);
  for (const [, id] of sample) {
    const m = await k.waitStatus(key, id, ['sent', 'delivered'], 15000);
    assert.ok(m.attempts.some((a) => a.channel === 'sms' && a.provider_id), `message ${id} has a provider id`);
  }
  await finish();
});
