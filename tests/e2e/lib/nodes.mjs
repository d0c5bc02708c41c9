// Several kaskad nodes on one PostgreSQL database (KASKAD_E2E_STORE), for
// the tests of nodes: they share one database, one operator key and one
// SMSC; each has its own data folder, port and name (node_id).
import fsSync from 'node:fs';
import path from 'node:path';
import { Kaskad, E2E_STORE, ROOT, newStoreDb, dropStoreDb, waitUntil } from './harness.mjs';
import { startSmsc } from './smsc.mjs';

/** Why a test of nodes does not run here (false: it runs). */
export const NODES_SKIP = E2E_STORE
  ? false
  : 'several nodes need a PostgreSQL database: KASKAD_E2E_STORE is not set (the SQLite run has one node)';

/**
 * The release build when it is there (bin/kaskad: loads of 20,000 messages
 * take too long under the sanitizers), else the harness's binary. KASKAD_NODES_BIN
 * overrides it.
 */
export function nodesBin() {
  if (process.env.KASKAD_NODES_BIN) return path.resolve(ROOT, process.env.KASKAD_NODES_BIN);
  const rel = path.join(ROOT, 'bin/kaskad');
  return fsSync.existsSync(rel) ? rel : undefined;
}

/** n nodes on one fresh database; cleanup registered with t. */
export async function startNodes(t, n, { args = [], bin = nodesBin() } = {}) {
  const db = await newStoreDb();
  const nodes = [];
  t.after(async () => {
    for (const k of nodes) {
      if (k.running()) await k.kill9();
      if (t.passed === false || process.env.KASKAD_E2E_VERBOSE) {
        t.diagnostic(`${k.name} stderr (last lines):`);
        for (const line of k.allStderr.split('\n').slice(-40)) t.diagnostic(`  ${line}`);
      }
      k.storeDb = null;   // the database is dropped once, below
      await k.cleanup();
    }
    await dropStoreDb(db.name);
  });
  let adminKey;
  for (let i = 1; i <= n; i++) {
    const name = `n${i}`;
    const k = new Kaskad({ bin, adminKey, args: ['--node_id', name, '--rate_key', '0', '--rate_account', '0', '--max_conns_per_ip', '0', ...args] });
    adminKey = k.adminKey;
    k.storeDb = db;
    k.name = name;
    nodes.push(k);
    await k.start();
  }
  return { nodes, db };
}

/** GET /v1/nodes on node k: the list. */
export async function listNodes(k) {
  return (await k.call('GET', '/v1/nodes', {}, 200)).nodes;
}

/** The work a node of the list holds that could be sent (SMS, channel attempts, deadlines). */
export function held(node) {
  return node ? node.holds.messages + node.holds.attempts + node.holds.waits : 0;
}

/** Waits until every node's list shows `want` live nodes. */
export async function waitAlive(nodes, want, timeoutMs = 15000) {
  return waitUntil(async () => {
    for (const k of nodes) {
      const l = await listNodes(k);
      if (l.filter((x) => x.alive).length !== want) return null;
    }
    return true;
  }, `${want} live nodes`, timeoutMs, 100);
}

/**
 * Two live nodes A and B on one fresh database with one SMSC (smscOpts) as
 * the route `main`, bound by both, and an account whose key B knows:
 * { a, b, key, smsc }; cleanup registered with t.
 */
export async function twoNodes(t, smscOpts = {}) {
  const smsc = await startSmsc(smscOpts);
  t.after(() => smsc.close());
  const { nodes } = await startNodes(t, 2);
  const [a, b] = nodes;
  await waitAlive(nodes, 2);
  await a.putRoute('main', smsc.routeConfig({}));
  const { key } = await a.createAccount();
  await waitUntil(async () => (await b.request('GET', '/v1/account', { key })).status === 200,
    'node B to know the key', 5000, 50);
  await smsc.waitFor(() => smsc.boundSessions().length >= 2, 'both nodes to bind');
  return { a, b, key, smsc };
}
