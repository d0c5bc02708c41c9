// batch.mjs - what the accept-rate benchmarks share: a fresh kaskad (the
// release build unless --bin says otherwise) whose SMS route leads nowhere,
// so that messages are stored and none is sent, and messages posted to it
// in batches of 1,000 with 4 requests in flight.
import path from 'node:path';
import { Kaskad, ROOT, freePort } from '../tests/e2e/lib/harness.mjs';
import { arg } from './lib.mjs';

export const BATCH = 1000;
export const PARALLEL = 4;

/* Starts kaskad with args and a route "nowhere" (an SMPP port nobody
   listens on), runs fn(k), then stops kaskad cleanly. */
export async function withNowhere(args, fn) {
  const k = new Kaskad({ bin: path.resolve(arg('bin', path.join(ROOT, 'bin/kaskad'))), args });
  await k.start(60000);
  try {
    await k.putRoute('nowhere', { host: '127.0.0.1', port: await freePort(), system_id: 'x', password: 'x',
      system_type: '', sessions: 1, window: 10, max_sps: 0, data_coding: 0, reconnect_min_ms: 60000 });
    await fn(k);
  } finally {
    await k.stopClean(60000);
    await k.cleanup();
  }
}

/* Posts messages message(0) .. message(n - 1) under key through
   POST /v1/messages/batch; rejects when a request fails or refuses one. */
export async function postBatches(k, key, n, message) {
  let next = 0;
  const worker = async () => {
    for (;;) {
      const start = next;
      if (start >= n) return;
      next += BATCH;
      const messages = [];
      for (let i = start; i < Math.min(start + BATCH, n); i++) messages.push(message(i));
      const r = await k.request('POST', '/v1/messages/batch', { key, body: { messages }, timeoutMs: 120000 });
      if (r.status !== 200 && r.status !== 202) throw new Error(`batch: ${r.status} ${r.text.slice(0, 200)}`);
      if (r.json.rejected) throw new Error(`batch: ${r.json.rejected} rejected: ${JSON.stringify(r.json.results.find((x) => x.error))}`);
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
}

/* Milliseconds fn takes. */
export async function timed(fn) {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/* A phone of 11 digits: prefix (4 digits) and i on 7. */
export const phone = (prefix, i) => `${prefix}${String(i).padStart(7, '0')}`;
