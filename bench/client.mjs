// The HTTP client the load generators share: keep-alive requests with a
// bearer key, and a Prometheus metric summed over its series.
import http from 'node:http';

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/** A client for opt.url with opt.key (read at each request, so it may change). */
export function client(opt) {
  function request(method, url, body) {
    return new Promise((resolve, reject) => {
      const u = new URL(url);
      const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const req = http.request({ method, host: u.hostname, port: u.port, path: u.pathname + u.search, agent,
        headers: { Authorization: `Bearer ${opt.key}`, 'Content-Type': 'application/json',
                   ...(data ? { 'Content-Length': data.length } : {}) } }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
      });
      req.on('error', reject);
      if (data) req.write(data);
      req.end();
    });
  }
  async function metric(name) {
    const r = await request('GET', `${opt.url}/metrics`);
    let sum = 0;
    for (const line of r.body.split('\n'))
      if (line.startsWith(name + '{') || line.startsWith(name + ' ')) sum += Number(line.split(' ').pop());
    return sum;
  }
  return { request, metric };
}
