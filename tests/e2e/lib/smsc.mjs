// A scriptable SMSC for the end-to-end tests, built on the `smpp` package's
// server. It accepts binds, records every submit_sm as raw bytes plus the
// fields decoded here (independently of the package's own text decoding),
// answers submit_sm_resp as scripted, and sends delivery receipts.
//
// Scripting, first match wins for each submit_sm:
//   smsc.forDest(dest, ...actions)   FIFO per destination_addr
//   smsc.queue(...actions)           FIFO for the next submits, any destination
//   smsc.handler = (sub) => action   a function (return undefined to fall through)
//   default                          { status: 0 } plus opts.autoReceipt
// An action is { status, delayMs, noResponse, receipt, receiptDelayMs, messageId }.
//   status     submit_sm_resp command_status (0 = OK, with a message id)
//   delayMs    wait this long before answering
//   noResponse never answer (kaskad's response timeout should kick in)
//   receipt    stat of a receipt sent after an OK answer ('DELIVRD', 'UNDELIV', ...)
import smpp from 'smpp';
import { gsmDecode, ucs2Decode } from './gsm.mjs';

// Keep the raw octets of every decoded PDU (non-enumerable, so re-encoding a
// PDU object is unaffected).
const PDU = smpp.PDU;
if (!PDU.prototype.__kkRawPatched) {
  const orig = PDU.prototype.fromBuffer;
  PDU.prototype.fromBuffer = function fromBufferKeepRaw(buffer) {
    Object.defineProperty(this, 'raw', { value: Buffer.from(buffer), enumerable: false });
    return orig.call(this, buffer);
  };
  Object.defineProperty(PDU.prototype, '__kkRawPatched', { value: true, enumerable: false });
}

export const STATUS = {
  ESME_ROK: 0x00,
  ESME_RINVMSGLEN: 0x01,
  ESME_RSYSERR: 0x08,
  ESME_RINVSRCADR: 0x0a,
  ESME_RINVDSTADR: 0x0b,
  ESME_RBINDFAIL: 0x0d,
  ESME_RINVPASWD: 0x0e,
  ESME_RINVSYSID: 0x0f,
  ESME_RMSGQFUL: 0x14,
  ESME_RSUBMITFAIL: 0x45,
  ESME_RTHROTTLED: 0x58,
};

const MESSAGE_STATE = {
  ENROUTE: 1, DELIVRD: 2, EXPIRED: 3, DELETED: 4, UNDELIV: 5, ACCEPTD: 6, UNKNOWN: 7, REJECTD: 8,
};

/**
 * Decodes a whole submit_sm PDU (header included) field by field, in the
 * SMPP 3.4 order. Returns the fields, the TLVs, the UDH (when esm_class has
 * 0x40), the payload after the UDH and its text.
 */
export function parseSubmitSm(raw) {
  const len = raw.readUInt32BE(0);
  let o = 16;
  const need = (n, what) => {
    if (o + n > len) throw new Error(`submit_sm truncated in ${what} at offset ${o}`);
  };
  const u8 = (what) => { need(1, what); return raw[o++]; };
  const cstr = (max, what) => {
    const end = raw.indexOf(0, o);
    if (end < 0 || end >= len) throw new Error(`submit_sm: ${what} not NUL-terminated`);
    if (end - o + 1 > max) throw new Error(`submit_sm: ${what} longer than ${max - 1}`);
    const s = raw.toString('latin1', o, end);
    o = end + 1;
    return s;
  };
  const f = {};
  f.command_id = raw.readUInt32BE(4);
  f.sequence_number = raw.readUInt32BE(12);
  f.service_type = cstr(6, 'service_type');
  f.source_addr_ton = u8('source_addr_ton');
  f.source_addr_npi = u8('source_addr_npi');
  f.source_addr = cstr(21, 'source_addr');
  f.dest_addr_ton = u8('dest_addr_ton');
  f.dest_addr_npi = u8('dest_addr_npi');
  f.destination_addr = cstr(21, 'destination_addr');
  f.esm_class = u8('esm_class');
  f.protocol_id = u8('protocol_id');
  f.priority_flag = u8('priority_flag');
  f.schedule_delivery_time = cstr(17, 'schedule_delivery_time');
  f.validity_period = cstr(17, 'validity_period');
  f.registered_delivery = u8('registered_delivery');
  f.replace_if_present_flag = u8('replace_if_present_flag');
  f.data_coding = u8('data_coding');
  f.sm_default_msg_id = u8('sm_default_msg_id');
  f.sm_length = u8('sm_length');
  need(f.sm_length, 'short_message');
  f.short_message = Buffer.from(raw.subarray(o, o + f.sm_length));
  o += f.sm_length;
  f.tlvs = new Map();
  while (o < len) {
    need(4, 'TLV header');
    const tag = raw.readUInt16BE(o);
    const l = raw.readUInt16BE(o + 2);
    o += 4;
    need(l, `TLV 0x${tag.toString(16)}`);
    f.tlvs.set(tag, Buffer.from(raw.subarray(o, o + l)));
    o += l;
  }
  f.udh = null;
  f.concat = null;
  let body = f.short_message;
  if ((f.esm_class & 0x40) && body.length > 0) {
    const udhl = body[0];
    if (udhl + 1 > body.length) throw new Error('submit_sm: UDH longer than short_message');
    f.udh = Buffer.from(body.subarray(0, udhl + 1));
    body = body.subarray(udhl + 1);
    for (let i = 1; i + 1 < f.udh.length;) {
      const iei = f.udh[i];
      const iel = f.udh[i + 1];
      const v = f.udh.subarray(i + 2, i + 2 + iel);
      if (iei === 0x00 && iel === 3) f.concat = { ref: v[0], total: v[1], seq: v[2] };
      if (iei === 0x08 && iel === 4) f.concat = { ref: v.readUInt16BE(0), total: v[2], seq: v[3] };
      i += 2 + iel;
    }
  }
  f.payload = Buffer.from(body);
  if (f.data_coding === 0x08) f.text = ucs2Decode(f.payload);
  else if (f.data_coding === 0x00) f.text = gsmDecode(f.payload);
  else f.text = f.payload.toString('latin1');
  return f;
}

function pad2(n) { return String(n).padStart(2, '0'); }
function smppDate(d) {
  return pad2(d.getUTCFullYear() % 100) + pad2(d.getUTCMonth() + 1) + pad2(d.getUTCDate()) +
    pad2(d.getUTCHours()) + pad2(d.getUTCMinutes());
}

export class Smsc {
  constructor(opts = {}) {
    this.opts = {
      systemId: null,          // expected system_id (null: accept any)
      password: null,          // expected password (null: accept any)
      autoReceipt: null,       // stat of a receipt after every OK answer, null for none
      receiptDelayMs: 20,
      receiptTlvs: true,       // add receipted_message_id and message_state
      unbindDelayMs: 0,        // how long an unbind waits for its answer
      redeliver: false,        // a receipt whose session closes unanswered goes again on the next
      ...opts,
    };
    this.submits = [];         // every submit_sm, in arrival order
    this.binds = [];           // every bind request
    this.unbinds = [];         // unbind requests received from kaskad
    this.closes = 0;           // sessions whose TCP connection closed
    this.receipts = [];        // deliver_sm sent: { messageId, stat, status }
    this.errors = [];          // submit_sm PDUs that did not parse, socket errors
    this.handler = null;
    this._queue = [];
    this._byDest = new Map();
    this._sessions = new Set();
    this._timers = new Set();
    this._nextId = 1;
    this._nextSession = 1;
    this._idBase = 1000000000 + Math.floor(Math.random() * 1000) * 1000000;
    this.server = null;
    this.port = 0;
  }

  async listen() {
    this.server = smpp.createServer((session) => this._onSession(session));
    this.server.on('error', (e) => this.errors.push(`server: ${e.message}`));
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.port = this.server.address().port;
    return this;
  }

  /** Route settings for PUT /v1/routes pointing at this SMSC. */
  routeConfig(extra = {}) {
    return {
      host: '127.0.0.1',
      port: this.port,
      system_id: this.opts.systemId ?? 'kaskad',
      password: this.opts.password ?? 'secret',
      system_type: '',
      sessions: 1,
      window: 10,
      max_sps: 0,
      data_coding: 0,
      throttle_pause_ms: 1000,
      resp_timeout_ms: 10000,
      reconnect_min_ms: 200,
      ...extra,
    };
  }

  /** Bound sessions right now. */
  boundSessions() {
    return [...this._sessions].filter((s) => s.kk.bound && !s.kk.closed);
  }

  queue(...actions) { this._queue.push(...actions); }

  forDest(dest, ...actions) {
    if (!this._byDest.has(dest)) this._byDest.set(dest, []);
    this._byDest.get(dest).push(...actions);
  }

  /** submit_sm records whose decoded text satisfies pred. */
  submitsWhere(pred) { return this.submits.filter(pred); }

  /** Waits until pred() is truthy; polls every 20 ms; throws with `what` at the deadline. */
  async waitFor(pred, what, timeoutMs = 10000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = pred();
      if (v) return v;
      if (Date.now() > deadline) {
        throw new Error(`SMSC: timed out after ${timeoutMs} ms waiting for ${what} ` +
          `(submits=${this.submits.length}, binds=${this.binds.length}, ` +
          `bound=${this.boundSessions().length})`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /**
   * Sends a delivery receipt for an OK-answered submit record (or a bare
   * message id). Resolves with the deliver_sm_resp command_status.
   */
  async sendReceipt(subOrId, stat = 'DELIVRD', o = {}) {
    const messageId = typeof subOrId === 'string' ? subOrId : subOrId.message_id;
    if (!messageId) throw new Error('sendReceipt: the submit has no message id');
    const sub = typeof subOrId === 'string' ? this.submits.find((s) => s.message_id === messageId) : subOrId;
    let session = sub && sub.session && sub.session.kk.bound && !sub.session.kk.closed ? sub.session : null;
    if (!session) {
      await this.waitFor(() => this.boundSessions().length > 0, 'a bound session to send a receipt on');
      session = this.boundSessions()[0];
    }
    const now = new Date();
    const submitDate = sub ? sub.at : now;
    const delivered = stat === 'DELIVRD' ? '001' : '000';
    const err = o.err ?? (stat === 'DELIVRD' ? '000' : '001');
    const preview = sub ? sub.text.slice(0, 20).replace(/[^\x20-\x7e]/g, '?') : '';
    const text = o.text ?? `id:${o.idInText ?? messageId} sub:001 dlvrd:${delivered} ` +
      `submit date:${smppDate(submitDate)} done date:${smppDate(now)} stat:${stat} err:${err} text:${preview}`;
    const pdu = {
      service_type: '',
      source_addr_ton: 1,
      source_addr_npi: 1,
      source_addr: sub ? sub.destination_addr : '79000000000',
      dest_addr_ton: sub ? sub.source_addr_ton : 5,
      dest_addr_npi: sub ? sub.source_addr_npi : 0,
      destination_addr: sub ? sub.source_addr : 'KASKAD',
      esm_class: 0x04,
      data_coding: 0,
      short_message: Buffer.from(text, 'latin1'),
    };
    if (o.tlvs ?? this.opts.receiptTlvs) {
      pdu.receipted_message_id = messageId;
      if (MESSAGE_STATE[stat]) pdu.message_state = MESSAGE_STATE[stat];
    }
    const rec = { messageId, stat, status: null };
    this.receipts.push(rec);
    return this._deliver(session, pdu, rec, messageId);
  }

  // One wait for a bound session, shared by every receipt that goes again
  // (tens of thousands at once when a large run is killed).
  _whenBound() {
    if (!this._bound) {
      this._bound = this.waitFor(() => this.boundSessions().length > 0, 'a bound session to send a receipt again on', 60000)
        .finally(() => { this._bound = null; });
    }
    return this._bound;
  }

  // Sends a receipt on session and resolves with its deliver_sm_resp status.
  // With the option redeliver, a session that closes before it answers
  // (kaskad killed, a connection dropped) does not lose the receipt: as
  // SMSCs do, it goes again on the next bound session. Without it, the
  // receipt counts as unanswered after 10 s.
  _deliver(session, pdu, rec, messageId) {
    return new Promise((resolve, reject) => {
      let done = false;
      const t = setTimeout(() => {
        this._timers.delete(t);
        if (done) return;
        done = true;
        session.removeListener('close', onClose);
        reject(new Error(`SMSC: no deliver_sm_resp for the receipt of ${messageId} within 10 s`));
      }, 10000);
      this._timers.add(t);
      const onClose = () => {
        if (done) return;
        done = true;
        clearTimeout(t);
        this._timers.delete(t);
        if (this.server == null) { resolve(null); return; }   // the SMSC itself is closing
        this._whenBound()
          .then(() => this._deliver(this.boundSessions()[0], pdu, rec, messageId))
          .then(resolve, reject);
      };
      if (this.opts.redeliver) session.once('close', onClose);
      const ok = session.deliver_sm(pdu, (resp) => {
        if (done) return;
        done = true;
        clearTimeout(t);
        this._timers.delete(t);
        session.removeListener('close', onClose);
        rec.status = resp.command_status;
        resolve(resp.command_status);
      });
      if (!ok) {
        if (done) return;
        session.removeListener('close', onClose);
        // a session already closing (kaskad killed a moment ago): with
        // redeliver, the receipt goes on the next bound session too
        if (this.opts.redeliver) { onClose(); return; }
        done = true;
        clearTimeout(t);
        this._timers.delete(t);
        reject(new Error('SMSC: session not writable for a receipt'));
      }
    });
  }

  async close() {
    const server = this.server;
    this.server = null;
    for (const t of this._timers) clearTimeout(t);
    this._timers.clear();
    for (const s of this._sessions) s.destroy();
    if (server) await new Promise((r) => server.close(() => r()));
  }

  /** Drops every TCP connection (kaskad should reconnect). */
  dropSessions() {
    for (const s of this._sessions) s.destroy();
  }

  _later(ms, fn) {
    if (!ms) { fn(); return; }
    const t = setTimeout(() => { this._timers.delete(t); fn(); }, ms);
    this._timers.add(t);
  }

  _pickAction(sub) {
    const q = this._byDest.get(sub.destination_addr);
    if (q && q.length) return q.shift();
    if (this._queue.length) return this._queue.shift();
    if (this.handler) {
      const a = this.handler(sub);
      if (a) return a;
    }
    return { status: 0 };
  }

  _onSession(session) {
    session.kk = { id: this._nextSession++, bound: false, closed: false, systemId: null };
    this._sessions.add(session);
    // every receipt waiting for its answer listens for the session's close
    session.setMaxListeners(0);
    session.on('error', (e) => {
      if (e.code !== 'ECONNRESET' && e.code !== 'EPIPE') this.errors.push(`session ${session.kk.id}: ${e.message}`);
    });
    session.on('close', () => {
      session.kk.closed = true;
      session.kk.bound = false;
      this.closes++;
      this._sessions.delete(session);
    });
    const onBind = (pdu) => {
      const rec = {
        command: pdu.command,
        system_id: pdu.system_id,
        password: pdu.password,
        system_type: pdu.system_type,
        interface_version: pdu.interface_version,
        addr_ton: pdu.addr_ton,
        addr_npi: pdu.addr_npi,
        address_range: pdu.address_range,
        session: session.kk.id,
        at: new Date(),
      };
      this.binds.push(rec);
      let status = 0;
      if (session.kk.bound) status = 0x05; // ESME_RALYBND
      else if (this.opts.systemId !== null && pdu.system_id !== this.opts.systemId) status = STATUS.ESME_RINVSYSID;
      else if (this.opts.password !== null && pdu.password !== this.opts.password) status = STATUS.ESME_RINVPASWD;
      if (status) {
        session.send(pdu.response({ command_status: status }));
        return;
      }
      session.kk.bound = true;
      session.kk.systemId = pdu.system_id;
      session.send(pdu.response({ system_id: 'TESTSMSC' }));
    };
    session.on('bind_transceiver', onBind);
    session.on('bind_transmitter', onBind);
    session.on('bind_receiver', onBind);
    session.on('enquire_link', (pdu) => session.send(pdu.response()));
    session.on('unbind', (pdu) => {
      this.unbinds.push({ session: session.kk.id, at: new Date() });
      this._later(this.opts.unbindDelayMs, () => {
        session.kk.bound = false;
        if (!session.kk.closed) session.send(pdu.response());
      });
    });
    session.on('submit_sm', (pdu) => this._onSubmit(session, pdu));
    session.on('unknown', (pdu) => session.send(pdu.response()));
  }

  _onSubmit(session, pdu) {
    if (!session.kk.bound) {
      session.send(pdu.response({ command_status: 0x04 })); // ESME_RINVBNDSTS
      return;
    }
    let sub;
    try {
      sub = parseSubmitSm(pdu.raw);
    } catch (e) {
      this.errors.push(e.message);
      session.send(pdu.response({ command_status: STATUS.ESME_RINVMSGLEN }));
      return;
    }
    sub.index = this.submits.length;
    sub.at = new Date();
    sub.session = session;
    sub.sessionId = session.kk.id;
    sub.status = null;        // command_status answered (null while pending)
    sub.message_id = null;
    session.kk.outstanding = (session.kk.outstanding ?? 0) + 1;
    sub.outstanding = session.kk.outstanding;   // unanswered on this session, this one included
    this.submits.push(sub);
    const a = this._pickAction(sub);
    sub.action = a;
    if (a.noResponse) return;
    this._later(a.delayMs || 0, () => {
      if (session.kk.closed) return;
      const status = a.status || 0;
      sub.status = status;
      session.kk.outstanding--;
      if (status) {
        session.send(pdu.response({ command_status: status }));
        return;
      }
      sub.message_id = a.messageId ?? String(this._idBase + this._nextId++);
      const stat = a.receipt ?? this.opts.autoReceipt;
      session.send(pdu.response({ message_id: sub.message_id }), () => {
        if (!stat) return;
        this._later(a.receiptDelayMs ?? this.opts.receiptDelayMs, () => {
          this.sendReceipt(sub, stat).catch((e) => this.errors.push(e.message));
        });
      });
    });
  }
}

/** Starts an SMSC on a free loopback port. */
export async function startSmsc(opts = {}) {
  const s = new Smsc(opts);
  await s.listen();
  return s;
}

/** A person's SMS (MO) from `from` to KASKAD, UCS-2, over the first bound
 *  session; resolves with the deliver_sm_resp command_status. */
export function sendMo(smsc, from, text) {
  const session = smsc.boundSessions()[0];
  const ucs2 = Buffer.from(text, 'utf16le').swap16();
  return new Promise((resolve, reject) => {
    const ok = session.deliver_sm({ source_addr_ton: 1, source_addr_npi: 1, source_addr: from,
      destination_addr: 'KASKAD', esm_class: 0, data_coding: 8, short_message: ucs2 },
    (resp) => resolve(resp.command_status));
    if (!ok) reject(new Error('session not writable'));
  });
}
