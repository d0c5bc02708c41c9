// sim_load.mjs - SMPP load generator for kaskad-sim (or any SMSC), using
// raw sockets and no dependencies.
//
// Opens --conns transceiver sessions, keeps --window submit_sm outstanding on
// each for --seconds, answers every deliver_sm, and prints one line per
// second and a JSON summary. The figure that matters is resp/s: submits
// answered per second.
//
//   node bench/sim_load.mjs --port 2776 --conns 4 --window 500 --seconds 10
//
// Options: --host, --port, --conns, --window, --seconds, --rd (registered_delivery,
// default 1), --system-id, --password, --dest, --text.
import net from 'node:net';

const opt = {
  host: '127.0.0.1', port: 2776, conns: 4, window: 500, seconds: 10, rd: 1,
  'system-id': 'load', password: 'load', dest: '79161234567', text: 'Load test message 0123456789',
};
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, '');
  if (!(k in opt)) {
    console.error(`unknown option --${k}; known: ${Object.keys(opt).map((x) => '--' + x).join(' ')}`);
    process.exit(2);
  }
  opt[k] = typeof opt[k] === 'number' ? Number(process.argv[i + 1]) : process.argv[i + 1];
}

const BIND_TRANSCEIVER = 0x09, SUBMIT_SM = 0x04, DELIVER_SM = 0x05, UNBIND = 0x06;
const RESP = 0x80000000;

function cstr(s) { return Buffer.concat([Buffer.from(s, 'latin1'), Buffer.alloc(1)]); }
function pdu(id, seq, body) {
  const h = Buffer.alloc(16);
  h.writeUInt32BE(16 + body.length, 0);
  h.writeUInt32BE(id >>> 0, 4);
  h.writeUInt32BE(0, 8);
  h.writeUInt32BE(seq, 12);
  return Buffer.concat([h, body]);
}

const bindBody = Buffer.concat([cstr(opt['system-id']), cstr(opt.password), cstr(''),
  Buffer.from([0x34, 0, 0]), cstr('')]);
const text = Buffer.from(opt.text, 'latin1');
const submitBody = Buffer.concat([
  cstr(''), Buffer.from([5, 0]), cstr('KASKAD'), Buffer.from([1, 1]), cstr(opt.dest),
  Buffer.from([0, 0, 0]), cstr(''), cstr(''), Buffer.from([opt.rd, 0, 0, 0, text.length]), text,
]);
const submitTemplate = pdu(SUBMIT_SM, 0, submitBody);
const SUBMIT_LEN = submitTemplate.length;

const total = { sent: 0, resp: 0, ok: 0, errors: {}, receipts: 0 };
let lastResp = 0;
const perSecond = [];

function session(index) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(opt.port, opt.host);
    sock.setNoDelay(true);
    let seq = 1, outstanding = 0, bound = false, stopping = false;
    let pending = null;   // leftover bytes of a partial PDU
    const st = { sock, stop };

    function sendSubmits(n) {
      if (n <= 0) return;
      const buf = Buffer.allocUnsafe(n * SUBMIT_LEN);
      for (let i = 0; i < n; i++) {
        submitTemplate.copy(buf, i * SUBMIT_LEN);
        buf.writeUInt32BE(seq, i * SUBMIT_LEN + 12);
        seq = seq >= 0x7fffffff ? 1 : seq + 1;
      }
      outstanding += n;
      total.sent += n;
      sock.write(buf);
    }
    function refill() {
      if (!stopping && bound && outstanding <= opt.window / 2) sendSubmits(opt.window - outstanding);
    }
    function stop() {
      stopping = true;
      sock.write(pdu(UNBIND, seq++, Buffer.alloc(0)));
      setTimeout(() => sock.destroy(), 500);
    }

    sock.on('connect', () => sock.write(pdu(BIND_TRANSCEIVER, seq++, bindBody)));
    sock.on('error', reject);
    sock.on('close', () => resolve(st));
    sock.on('data', (chunk) => {
      let buf = pending ? Buffer.concat([pending, chunk]) : chunk;
      let off = 0;
      const acks = [];
      while (buf.length - off >= 16) {
        const len = buf.readUInt32BE(off);
        if (len < 16) { console.error('bad command_length from peer'); sock.destroy(); return; }
        if (buf.length - off < len) break;
        const id = buf.readUInt32BE(off + 4) >>> 0;
        const status = buf.readUInt32BE(off + 8);
        const s = buf.readUInt32BE(off + 12);
        if (id === (SUBMIT_SM | RESP) >>> 0) {
          outstanding--;
          total.resp++;
          if (status === 0) total.ok++;
          else total.errors[status] = (total.errors[status] || 0) + 1;
        } else if (id === DELIVER_SM) {
          total.receipts++;
          const r = Buffer.alloc(17);
          r.writeUInt32BE(17, 0); r.writeUInt32BE((DELIVER_SM | RESP) >>> 0, 4); r.writeUInt32BE(s, 12);
          acks.push(r);
        } else if (id === (BIND_TRANSCEIVER | RESP) >>> 0) {
          if (status !== 0) { reject(new Error(`bind refused: status ${status}`)); return; }
          bound = true;
          resolve(st);
        }
        off += len;
      }
      pending = off < buf.length ? buf.subarray(off) : null;
      if (acks.length) sock.write(Buffer.concat(acks));
      refill();
    });
    st.start = () => refill();
  });
}

const sessions = await Promise.all(Array.from({ length: opt.conns }, (_, i) => session(i)));
const t0 = process.hrtime.bigint();
for (const s of sessions) s.start();
const ticker = setInterval(() => {
  const r = total.resp - lastResp;
  lastResp = total.resp;
  perSecond.push(r);
  console.log(`t=${perSecond.length}s resp/s=${r} sent=${total.sent} ok=${total.ok} receipts=${total.receipts}`);
}, 1000);
await new Promise((r) => setTimeout(r, opt.seconds * 1000));
clearInterval(ticker);
const secs = Number(process.hrtime.bigint() - t0) / 1e9;
for (const s of sessions) s.stop();
await new Promise((r) => setTimeout(r, 600));
const sorted = [...perSecond].sort((a, b) => a - b);
console.log(JSON.stringify({
  conns: opt.conns, window: opt.window, seconds: +secs.toFixed(2), sent: total.sent,
  resp: total.resp, ok: total.ok, errors: total.errors, receipts: total.receipts,
  resp_per_s: Math.round(total.resp / secs), median_resp_per_s: sorted[sorted.length >> 1] || 0,
}));
process.exit(0);
