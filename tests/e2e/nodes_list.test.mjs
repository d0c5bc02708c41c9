// GET /v1/nodes on either store: the operator sees this node (on SQLite the
// only one) with its heartbeat and the due work it holds; an account key
// does not.
import test from 'node:test';
import assert from 'node:assert/strict';
import { setup } from './lib/harness.mjs';

test('GET /v1/nodes lists this node and what it holds', { timeout: 60000 }, async (t) => {
  const { k, key, finish } = await setup(t, { args: ['--node_id', 'edge-1'] });
  const r = await k.call('GET', '/v1/nodes', {}, 200);
  assert.equal(r.nodes.length, 1, JSON.stringify(r));
  const n = r.nodes[0];
  assert.equal(n.name, 'edge-1');
  assert.equal(n.alive, true);
  assert.match(n.id, /^\d+$/);
  assert.ok(Date.parse(n.heartbeat_at) >= Date.parse(n.started_at));
  assert.deepEqual(Object.keys(n.holds).sort(), ['attempts', 'messages', 'outbox', 'waits']);
  for (const v of Object.values(n.holds)) assert.equal(typeof v, 'number');
  const other = await k.request('GET', '/v1/nodes', { key });
  assert.ok([401, 403, 404].includes(other.status), `an account key: ${other.status}`);
  await finish();
});
