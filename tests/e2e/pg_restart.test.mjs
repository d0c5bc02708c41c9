// PostgreSQL goes away under load and comes back: while it is away kaskad
// answers 503 (nothing stored, nothing sent), it loses nothing it
// acknowledged, and it carries on once the server is back, without being
// restarted. The server is the test cluster of tools/pg-test.sh (its
// `pause` and `resume`), named by KASKAD_PG_STATE as when it was started;
// skipped on SQLite and on a server that script did not start.
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fsSync from 'node:fs';
import path from 'node:path';
import { setup, sleep, waitUntil, E2E_STORE, ROOT } from './lib/harness.mjs';

const STATE = path.resolve(ROOT, process.env.KASKAD_PG_STATE ?? 'build/pg-test.dir');
const SKIP = !E2E_STORE
  ? 'PostgreSQL is not in use (KASKAD_E2E_STORE is not set): SQLite has no server to restart'
  : !fsSync.existsSync(STATE) ? `the PostgreSQL server was not started by tools/pg-test.sh (${STATE} missing)` : false;

function pgTest(cmd) {
  return new Promise((resolve, reject) => {
    execFile(path.join(ROOT, 'tools/pg-test.sh'), [cmd], { cwd: ROOT, timeout: 60000 },
      (err, _out, stderr) => (err ? reject(new Error(`pg-test.sh ${cmd}: ${stderr || err.message}`)) : resolve()));
  });
}

test('PostgreSQL restarted under load: 503 while away, nothing acknowledged lost, no restart of kaskad',
  { skip: SKIP, timeout: 120000 }, async (t) => {
    const { k, key, smsc, finish } = await setup(t, { smsc: { autoReceipt: 'DELIVRD', receiptDelayMs: 20 } });
    let paused = false;
    t.after(async () => { if (paused === true) await pgTest('resume'); });
    const acked = [];
    let refused = 0, other = 0, n = 0, stop = false, okAfter = 0;
    const load = async () => {
      while (!stop) {
        const i = n++;
        const r = await k.request('POST', '/v1/messages', {
          key, body: { to: `7916${String(2000000 + i).slice(-7)}`, text: `restart r${i}x`, campaign: 'restart' },
          timeoutMs: 20000,
        }).catch((e) => ({ status: 0, text: e.message }));
        if (r.status === 202) {
          acked.push(r.json.id);
          if (paused === 'back') okAfter++;
        } else if (r.status === 503) refused++;
        else other++;
        if (r.status !== 202) await sleep(50);
      }
    };
    const workers = Array.from({ length: 4 }, load);
    await waitUntil(() => acked.length >= 200, '200 messages acknowledged', 30000, 50);

    // The server stops (fast shutdown: connections cut) with sends in flight.
    await pgTest('pause');
    paused = true;
    const before = refused;
    await waitUntil(() => refused > before + 10, 'kaskad to answer 503 while PostgreSQL is away', 30000, 50);
    const health = await k.request('GET', '/healthz');
    t.diagnostic(`healthz while away: ${health.status}`);
    await sleep(2000);
    await pgTest('resume');
    paused = 'back';
    await waitUntil(() => okAfter >= 200, 'kaskad to store messages again once PostgreSQL is back', 60000, 50);
    stop = true;
    await Promise.all(workers);
    t.diagnostic(`acknowledged ${acked.length}, refused with 503 ${refused}, other answers ${other}`);
    assert.equal(other, 0, 'every answer was 202 or 503');
    assert.ok(k.running(), 'kaskad was not restarted');

    // Everything acknowledged is delivered. Receipts that came while the
    // database was away were refused (an error in deliver_sm_resp): the SMSC
    // sends them again, as SMSCs do.
    const resent = new Set();
    let last = null;
    await waitUntil(async () => {
      for (const rec of smsc.receipts.slice()) {
        if (rec.status === 0 || rec.status === null || resent.has(rec.messageId)) continue;
        resent.add(rec.messageId);
        smsc.sendReceipt(rec.messageId).catch(() => {});
      }
      last = await k.call('GET', '/v1/campaigns/restart/report', { key }, 200);
      return last.messages === acked.length && (last.by_status.delivered ?? 0) === acked.length;
    }, 'every acknowledged message to be delivered', 60000, 250).catch((e) => {
      e.message += ` last report: ${JSON.stringify(last)}`;
      throw e;
    });
    const texts = new Map();
    for (const s of smsc.submits) texts.set(s.text, (texts.get(s.text) ?? 0) + 1);
    const twice = [...texts.values()].filter((c) => c > 1).length;
    t.diagnostic(`SMS submitted ${smsc.submits.length} for ${acked.length} messages; sent twice ${twice};` +
      ` receipts sent again ${resent.size}`);
    await finish();
  });
