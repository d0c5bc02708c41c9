// lib.mjs - what the benchmark scripts share (Node, no dependencies).
import http from 'node:http';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/* The value after --name on the command line, or dflt. */
export const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};

/* A JSON request through agent with a bearer key (defaultKey unless given):
   resolves with the parsed body (or its text), rejects on a status >= 300. */
export function requester(agent, defaultKey) {
  return (method, url, body, key = defaultKey) => new Promise((resolve, reject) => {
    const u = new URL(url);
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request({ method, host: u.hostname, port: u.port, path: u.pathname + u.search, agent,
      headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json',
                 ...(data ? { 'Content-Length': data.length } : {}) } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        if (res.statusCode >= 300) reject(new Error(`${method} ${url} -> ${res.statusCode} ${text.slice(0, 300)}`));
        else resolve(text && text[0] === '{' ? JSON.parse(text) : text);
      });
    });
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

/* Waits until fn() is truthy (every pause ms), at most ms. */
export async function until(fn, what, ms = 60000, pause = 50) {
  const end = Date.now() + ms;
  for (;;) {
    try { if (await fn()) return; } catch { /* not yet */ }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(pause);
  }
}

/* Records a consent to advertising for every phone of phones (an iterable of
   E.164 digits) under key, through POST /v1/consents/import in files of
   `rows` phones (the endpoint takes up to 50,000 a request, within the
   server's max_body). Resolves with the number recorded. */
export async function consentAll(url, key, phones, rows = 40000) {
  let recorded = 0, lines = [];
  const flush = async () => {
    if (!lines.length) return;
    const body = Buffer.from(`phone,source\n${lines.join('\n')}\n`);
    lines = [];
    const r = await fetch(`${url}/v1/consents/import`, { method: 'POST', body,
      headers: { authorization: `Bearer ${key}`, 'content-type': 'text/csv' },
      signal: AbortSignal.timeout(300000) });
    const text = await r.text();
    if (r.status !== 200) throw new Error(`consents/import -> ${r.status} ${text.slice(0, 300)}`);
    const j = JSON.parse(text);
    if (j.rejected) throw new Error(`consents/import: ${j.rejected} rejected: ${JSON.stringify(j.errors[0])}`);
    recorded += j.recorded;
  };
  for (const p of phones) {
    lines.push(`${p},bench`);
    if (lines.length === rows) await flush();
  }
  await flush();
  return recorded;
}
