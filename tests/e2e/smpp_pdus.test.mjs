// What kaskad puts on the wire: bind and submit_sm fields, checked byte by
// byte by an independent SMSC.
import test from 'node:test';
import assert from 'node:assert/strict';
import { setup } from './lib/harness.mjs';
import { gsmEncode, ucs2Decode } from './lib/gsm.mjs';

const hex = (b) => Buffer.from(b).toString('hex').replace(/(..)/g, '$1 ').trim();

function assertValidity(sub, what) {
  const v = sub.validity_period;
  assert.equal(v.length, 16, `${what}: validity_period ${JSON.stringify(v)} is not 16 characters`);
  assert.match(v, /^\d{12}[0-9]\d\d\+$/, `${what}: validity_period ${JSON.stringify(v)} is not absolute YYMMDDhhmmsstnn+`);
  // Absolute time: YYMMDDhhmmss, tenths, quarter hours from UTC, '+'.
  const [yy, mo, dd, hh, mi, ss] = v.match(/\d\d/g).map(Number);
  const nn = Number(v.slice(13, 15));
  const t = Date.UTC(2000 + yy, mo - 1, dd, hh, mi, ss) - nn * 15 * 60 * 1000;
  return t;
}

test('bind_transceiver and submit_sm fields, GSM-7 and UCS-2 byte-exact', async (t) => {
  const env = await setup(t, {
    smsc: { systemId: 'kk_sys', password: 'pw123' },
    route: { system_id: 'kk_sys', password: 'pw123', system_type: 'VMA', window: 10 },
  });
  const { k, smsc, key } = env;

  // The bind.
  assert.ok(smsc.binds.length >= 1, 'kaskad bound');
  const b = smsc.binds[0];
  assert.equal(b.command, 'bind_transceiver');
  assert.equal(b.system_id, 'kk_sys');
  assert.equal(b.password, 'pw123');
  assert.equal(b.system_type, 'VMA');
  assert.equal(b.interface_version, 0x34);

  // 1. GSM-7 with extension characters, alpha sender.
  const gsmText = 'Price: 10€ {promo} [x] ^~|\\';
  const r1 = await k.send(key, { to: '+79161234567', text: gsmText, sender: 'KASKAD', ttl: '10m' });
  assert.equal(r1.status, 'accepted');
  assert.equal(r1.to, '79161234567');
  assert.equal(r1.encoding, 'gsm7');
  assert.equal(r1.segments, 1);
  const s1 = await smsc.waitFor(() => smsc.submits.find((s) => s.destination_addr === '79161234567'),
    'the GSM-7 submit_sm');
  const expected = Buffer.from(
    '50 72 69 63 65 3a 20 31 30 1b 65 20 1b 28 70 72 6f 6d 6f 1b 29 20 1b 3c 78 1b 3e 20 1b 14 1b 3d 1b 40 1b 2f'
      .replace(/ /g, ''), 'hex');
  assert.deepEqual(expected, gsmEncode(gsmText), 'test table sanity');
  assert.equal(s1.data_coding, 0x00, 'GSM-7 data_coding');
  assert.equal(s1.esm_class & 0x40, 0, 'no UDHI on a single part');
  assert.equal(hex(s1.short_message), hex(expected), 'GSM-7 short_message with ESC pairs');
  assert.equal(s1.sm_length, expected.length);
  assert.equal(s1.source_addr, 'KASKAD');
  assert.equal(s1.source_addr_ton, 5, 'alpha sender TON');
  assert.equal(s1.source_addr_npi, 0, 'alpha sender NPI');
  assert.equal(s1.dest_addr_ton, 1, 'dest TON');
  assert.equal(s1.dest_addr_npi, 1, 'dest NPI');
  assert.equal(s1.registered_delivery, 1);
  assert.equal(s1.schedule_delivery_time, '');
  assert.equal(s1.protocol_id, 0);
  assert.equal(s1.priority_flag, 0);
  assert.equal(s1.replace_if_present_flag, 0);
  assert.equal(s1.service_type, '');
  const vt = assertValidity(s1, 'GSM-7');
  const created = Date.parse(r1.created_at);
  assert.ok(Math.abs(Date.parse(r1.expires_at) - (created + 10 * 60_000)) <= 1000, 'expires_at = created_at + ttl');
  assert.ok(Math.abs(vt - Date.parse(r1.expires_at)) <= 1000,
    `validity_period ${s1.validity_period} should be the message's expires_at ${r1.expires_at}`);

  // 2. Basic-table characters that are not ASCII-identical (@ is 0x00, _ is 0x11, ...),
  //    numeric sender, national number form.
  const basicText = 'A@B_£$è¥ÅΔ';
  const r2 = await k.send(key, { to: '89161230002', text: basicText, sender: '79001234567' });
  assert.equal(r2.to, '79161230002');
  assert.equal(r2.encoding, 'gsm7');
  assert.equal(r2.segments, 1);
  const s2 = await smsc.waitFor(() => smsc.submits.find((s) => s.destination_addr === '79161230002'),
    'the basic-table submit_sm');
  assert.equal(s2.data_coding, 0x00);
  assert.equal(hex(s2.short_message), hex(Buffer.from([0x41, 0x00, 0x42, 0x11, 0x01, 0x02, 0x04, 0x03, 0x0e, 0x10])));
  assert.equal(s2.source_addr, '79001234567');
  assert.equal(s2.source_addr_ton, 1, 'numeric sender TON');
  assert.equal(s2.source_addr_npi, 1, 'numeric sender NPI');
  assert.equal(s2.destination_addr, '79161230002', 'digits without +');
  assert.equal(s2.registered_delivery, 1);
  const vt2 = assertValidity(s2, 'numeric sender');
  assert.ok(Math.abs(vt2 - Date.parse(r2.expires_at)) <= 1000,
    `validity_period ${s2.validity_period} should be the message's expires_at ${r2.expires_at} (class default ttl)`);

  // 3. Cyrillic, 100 characters: two UCS-2 parts with an 8-bit concatenation UDH.
  const base = 'Съешь же ещё этих мягких французских булок, да выпей чаю. ';
  const cyr = (base + base).slice(0, 100);
  assert.equal(cyr.length, 100);
  const r3 = await k.send(key, { to: '9161230003', text: cyr, sender: 'KASKAD' });
  assert.equal(r3.to, '79161230003');
  assert.equal(r3.encoding, 'ucs2');
  assert.equal(r3.segments, 2);
  const parts = await smsc.waitFor(() => {
    const p = smsc.submits.filter((s) => s.destination_addr === '79161230003');
    return p.length >= 2 ? p : null;
  }, 'both UCS-2 parts');
  assert.equal(parts.length, 2, 'exactly two parts');
  parts.sort((a, b) => a.concat?.seq - b.concat?.seq);
  for (const [i, p] of parts.entries()) {
    assert.equal(p.data_coding, 0x08, `part ${i + 1} data_coding`);
    assert.equal(p.esm_class & 0x40, 0x40, `part ${i + 1} esm_class has UDHI`);
    assert.equal(p.udh.length, 6, `part ${i + 1} UDH length`);
    assert.equal(hex(p.udh.subarray(0, 3)), '05 00 03', `part ${i + 1} UDH header`);
    assert.equal(p.udh[4], 2, `part ${i + 1} total`);
    assert.equal(p.udh[5], i + 1, `part ${i + 1} sequence`);
    assert.equal(p.payload.length % 2, 0);
    assert.equal(p.source_addr_ton, 5);
    assert.equal(p.registered_delivery, 1);
    assertValidity(p, `UCS-2 part ${i + 1}`);
  }
  assert.equal(parts[0].udh[3], parts[1].udh[3], 'same reference in both parts');
  assert.equal(parts[0].payload.length, 134, 'first part carries 67 UTF-16 units');
  assert.equal(ucs2Decode(Buffer.concat([parts[0].payload, parts[1].payload])), cyr);

  // 4. A GSM text of 161 septets: two parts of 153 + 8, the ESC pair not split.
  const longGsm = `${'a'.repeat(152)}€${'b'.repeat(7)}`; // 152 + 2 + 7 = 161 septets
  const r4 = await k.send(key, { to: '79161230004', text: longGsm });
  assert.equal(r4.encoding, 'gsm7');
  assert.equal(r4.segments, 2);
  const gparts = await smsc.waitFor(() => {
    const p = smsc.submits.filter((s) => s.destination_addr === '79161230004');
    return p.length >= 2 ? p : null;
  }, 'both GSM-7 parts');
  gparts.sort((a, b) => a.concat?.seq - b.concat?.seq);
  assert.equal(gparts[0].data_coding, 0x00);
  assert.equal(gparts[0].esm_class & 0x40, 0x40);
  assert.equal(gparts[0].payload.length, 152, 'ESC must not end a part: 152 septets in part 1');
  assert.notEqual(gparts[0].payload.at(-1), 0x1b, 'part 1 must not end with ESC');
  assert.equal(hex(Buffer.concat([gparts[0].payload, gparts[1].payload])), hex(gsmEncode(longGsm)));
  assert.equal(gparts[0].udh[3], gparts[1].udh[3]);

  // Nothing else reached the SMSC.
  assert.equal(smsc.submits.length, 1 + 1 + 2 + 2, 'submit_sm count');
  await env.finish();
});

test('route data_coding applies to GSM-7 texts', async (t) => {
  const env = await setup(t, { route: { data_coding: 1 } });
  const { k, smsc, key } = env;
  const r = await k.send(key, { to: '79161239999', text: 'hello', sender: 'KASKAD' });
  assert.equal(r.encoding, 'gsm7');
  const s = await smsc.waitFor(() => smsc.submits[0], 'the submit_sm');
  assert.equal(s.data_coding, 0x01);
  const r2 = await k.send(key, { to: '79161239998', text: 'привет' });
  assert.equal(r2.encoding, 'ucs2');
  const s2 = await smsc.waitFor(() => smsc.submits[1], 'the second submit_sm');
  assert.equal(s2.data_coding, 0x08, 'UCS-2 stays 8 whatever the route says');
  await env.finish();
});
