// HLR/MNP lookups (setting hlr_url): GET /v1/numbers/{phone} shows the
// lookup service's answer in `mnp` (a ported number's current operator,
// roaming), answers come from a cache afterwards, and a service that is down
// leaves `mnp` null without holding the answer up.
import test from 'node:test';
import assert from 'node:assert/strict';
import { setup } from './lib/harness.mjs';
import { Sim } from './lib/sim.mjs';

test('numbers: HLR/MNP answers, cached; a service that is down leaves mnp null', async (t) => {
  const sim = new Sim();
  t.after(() => sim.stop());
  await sim.start();
  const { k, key, finish } = await setup(t, {
    args: ['--hlr_url', `${sim.url}/hlr`], outboundAllow: '127.0.0.1/32',
  });
  const megafon = { operator: 'ПАО "МегаФон"', inn: '7812014560' };
  const cfg = await sim.call('POST', '/hlr/config',
    { ported: { 79161234567: megafon }, roaming: ['79161234568'] });
  assert.equal(cfg.ported, 1);
  const get = (p) => k.request('GET', `/v1/numbers/${p}`, { key });
  const ported = await get('89161234567');
  assert.equal(ported.status, 200, ported.text);
  assert.deepEqual(ported.json.mnp, { ported: true, operator: megafon.operator, inn: megafon.inn, roaming: false });
  const roaming = await get('79161234568');
  assert.deepEqual(roaming.json.mnp, { ported: false, operator: null, inn: null, roaming: true });
  // Asked again: from the cache, the service is not asked.
  const before = (await sim.call('GET', '/hlr/stats')).lookups;
  assert.equal(before, 2);
  assert.deepEqual((await get('79161234567')).json.mnp, ported.json.mnp);
  assert.equal((await sim.call('GET', '/hlr/stats')).lookups, 2);
  // Down: mnp null, and the failure is remembered for a while (not asked per request).
  await sim.call('POST', '/hlr/config', { down: true });
  const t0 = Date.now();
  const down = await get('79161234569');
  assert.equal(down.status, 200, down.text);
  assert.equal(down.json.mnp, null);
  assert.ok(Date.now() - t0 < 2500, 'answered without waiting long');
  await get('79161234569');
  assert.equal((await sim.call('GET', '/hlr/stats')).lookups, 3);
  await finish();
});
