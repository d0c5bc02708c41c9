// Contact imports: a messy file (Windows-1251 with `;`, quotes holding
// separators and line breaks, every phone form, bad rows of each kind) and a
// UTF-8 one with a BOM: counts, errors.csv, time zones from the register;
// the same file again duplicates nothing; one import at a time per account;
// kill -9 during a large import, restart: the import is failed, the rows up
// to the last commit are there, and importing again leaves each phone once.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setup, ROOT, sleep, waitUntil } from './lib/harness.mjs';
import { generate } from '../../bench/import.mjs';

const REGISTER = process.env.KASKAD_NUMBERING || path.resolve(ROOT, '../shared/data/numbering-ru');
const haveRegister = fs.existsSync(path.join(REGISTER, 'DEF-9xx.csv'));
const registerArgs = haveRegister ? ['--numbering', REGISTER] : [];

/* Windows-1251 bytes of a string (Cyrillic, ASCII). */
function cp1251(s) {
  const out = [];
  for (const ch of s) {
    const c = ch.codePointAt(0);
    if (c < 0x80) out.push(c);
    else if (c >= 0x410 && c <= 0x44f) out.push(c - 0x410 + 0xc0);
    else if (c === 0x401) out.push(0xa8);
    else if (c === 0x451) out.push(0xb8);
    else throw new Error(`no cp1251 for ${ch}`);
  }
  return Buffer.from(out);
}

const MESSY = [
  'phone;name;city;timezone;lists;consent',
  '8 (916) 123-45-67;Анна;Казань;;vip|news;yes',
  '+7 913 912 34 56;"Борис; ""Б""\nвторая строка";"Омск ""центр""\tюг\\";;;no',
  '9242345678;Вера;Владивосток;;;',
  '79114512345;Глеб;Калининград;Europe/Kaliningrad;;',
  '8-916-123-45-67;Анна Петровна;;;;',   // the first phone again: merges
  ';нет телефона;;;;',                    // no_phone
  '12345;короткий;;;;',                   // invalid_phone
  '79161112233;Дима;;Mars/Base;;',        // invalid_timezone
  '79161112234;лишнее;;;;;;',             // wrong_column_count
  '79161112235;Ёж;;;;maybe',              // invalid_consent
].join('\r\n') + '\r\n';

async function runImport(k, key, body, query = 'list=base&country=RU') {
  const r = await k.request('POST', `/v1/contacts/import?${query}`, {
    key, body, headers: { 'content-type': 'text/csv' }, timeoutMs: 60000,
  });
  assert.equal(r.status, 202, r.text);
  assert.match(r.json.id, /^imp_\d+$/);
  assert.equal(r.json.status, 'running');
  let imp;
  await waitUntil(async () => {
    imp = (await k.request('GET', `/v1/imports/${r.json.id}`, { key })).json;
    return imp.status !== 'running';
  }, 'the import to end', 120000, 50);
  return imp;
}

test('import: a messy cp1251 file, errors.csv, the same file again', async (t) => {
  const { k, key, finish } = await setup(t, { args: registerArgs });
  const imp = await runImport(k, key, cp1251(MESSY));
  assert.equal(imp.status, 'done', JSON.stringify(imp));
  assert.equal(imp.rows_total, 10);
  assert.equal(imp.created, 4);
  assert.equal(imp.duplicates, 1);
  assert.equal(imp.rejected, 5);
  const errs = await k.request('GET', `/v1/imports/${imp.id}/errors.csv`, { key });
  assert.equal(errs.status, 200);
  assert.match(errs.headers.get('content-type'), /text\/csv/);
  const lines = errs.text.trim().split('\n');
  assert.equal(lines[0], 'line,reason,raw');
  const reasons = lines.slice(1).map((l) => l.split(',').slice(0, 2).join(','));
  assert.deepEqual(reasons.map((r) => r.split(',')[1]).sort(),
    ['invalid_consent', 'invalid_phone', 'invalid_timezone', 'no_phone', 'wrong_column_count']);
  assert.ok(reasons.includes('9,invalid_phone'), errs.text);
  assert.match(errs.text, /короткий/, 'raw rows come back as UTF-8');

  const anna = (await k.request('GET', '/v1/contacts/79161234567', { key })).json;
  assert.equal(anna.name, 'Анна Петровна', 'later values win');
  assert.deepEqual(anna.lists, ['base', 'news', 'vip'], 'lists add up');
  assert.equal(anna.attrs.city, 'Казань');
  assert.equal(anna.consent, true);
  const boris = (await k.request('GET', '/v1/contacts/79139123456', { key })).json;
  assert.equal(boris.name, 'Борис; "Б"\nвторая строка');
  assert.deepEqual(boris.attrs, { city: 'Омск "центр"\tюг\\' }, 'attributes keep quotes, tabs, backslashes');
  const gleb = (await k.request('GET', '/v1/contacts/79114512345', { key })).json;
  assert.equal(gleb.timezone, 'Europe/Kaliningrad');
  assert.equal(gleb.timezone_source, 'explicit');
  if (haveRegister) {
    assert.equal(boris.timezone, 'Asia/Novosibirsk');
    assert.equal(boris.timezone_source, 'number');
    assert.ok(boris.operator && boris.region);
    const vera = (await k.request('GET', '/v1/contacts/79242345678', { key })).json;
    assert.equal(vera.timezone, 'Asia/Vladivostok');
  } else {
    assert.equal(boris.timezone_source, 'default');
  }

  // The same file again: every row merges into what is there.
  const again = await runImport(k, key, cp1251(MESSY));
  assert.equal(again.created, 0);
  assert.equal(again.updated, 4);
  assert.equal(again.duplicates, 1);
  const lists = (await k.request('GET', '/v1/lists', { key })).json.lists;
  assert.deepEqual(lists.find((l) => l.name === 'base'), { name: 'base', size: 4 });

  // UTF-8 with a BOM and `,`.
  const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]),
    Buffer.from('phone,name\n+7 (903) 000-00-01,Эля\n')]);
  const third = await runImport(k, key, bom, 'list=bom');
  assert.equal(third.created, 1, JSON.stringify(third));
  assert.equal((await k.request('GET', '/v1/contacts/79030000001', { key })).json.name, 'Эля');

  // A file that is no contact base fails with its reason; bad parameters.
  const bad = await runImport(k, key, 'name,city\nx,y\n');
  assert.equal(bad.status, 'failed');
  assert.match(bad.error, /phone/);
  const r = await k.request('POST', '/v1/contacts/import?list=bad%20name', { key, body: 'phone\n1\n' });
  assert.equal(r.status, 422);
  assert.equal(r.json.error.code, 'invalid_list');
  assert.equal((await k.request('GET', '/v1/imports/imp_999', { key })).status, 404);
  await finish();
});

// 200,000 rows on SQLite; PostgreSQL writes a contact in a few round trips
// and takes 20,000 (still many batches: the kill lands in the middle).
const KILL_ROWS = process.env.KASKAD_E2E_STORE ? 20000 : 200000;

test('import: kill -9 in the middle, restart, import again: each phone once', { timeout: 240000 }, async (t) => {
  const file = path.join(os.tmpdir(), `kaskad-kill-${process.pid}.csv`);
  generate(file, KILL_ROWS);
  t.after(() => fs.rmSync(file, { force: true }));
  const body = fs.readFileSync(file);
  const { k, key, finish } = await setup(t, { args: registerArgs });
  const r = await k.request('POST', '/v1/contacts/import?list=big', {
    key, body, headers: { 'content-type': 'text/csv' }, timeoutMs: 60000,
  });
  assert.equal(r.status, 202, r.text);
  // One import at a time per account.
  const busy = await k.request('POST', '/v1/contacts/import', { key, body: 'phone\n79160000000\n' });
  if (busy.status !== 202) assert.equal(busy.status, 409, busy.text);
  let progress;
  await waitUntil(async () => {
    progress = (await k.request('GET', `/v1/imports/${r.json.id}`, { key })).json;
    return progress.rows_done > 0 || progress.status !== 'running';
  }, 'rows to be committed', 60000, 10);
  await k.kill9();
  t.diagnostic(`killed at ${progress.rows_done} rows committed (${progress.status})`);
  await k.restart(30000);
  const after = (await k.request('GET', `/v1/imports/${r.json.id}`, { key })).json;
  if (progress.status === 'running') {
    assert.equal(after.status, 'failed', JSON.stringify(after));
    assert.match(after.error, /interrupted/);
  }
  assert.ok(after.rows_done >= progress.rows_done);
  const again = await runImport(k, key, body, 'list=big');
  assert.equal(again.status, 'done', JSON.stringify(again));
  assert.equal(again.created + again.updated, KILL_ROWS - KILL_ROWS / 100);
  assert.equal(again.rejected, KILL_ROWS / 100);
  const lists = (await k.request('GET', '/v1/lists', { key })).json.lists;
  assert.equal(lists.find((l) => l.name === 'big').size, KILL_ROWS - KILL_ROWS / 100, 'each phone once');
  await sleep(10);
  await finish();
});

// The rows go in while the file still arrives; an upload that breaks off
// leaves the import failed where it stopped, its rows up to there kept, the
// account free for the next import, and the whole file again merges.
test('import: read while it uploads; an upload cut off fails where it stopped', { timeout: 240000 }, async (t) => {
  const rows = process.env.KASKAD_E2E_STORE ? 20000 : 100000;
  const file = path.join(os.tmpdir(), `kaskad-cut-${process.pid}.csv`);
  generate(file, rows);
  t.after(() => fs.rmSync(file, { force: true }));
  const body = fs.readFileSync(file);
  const { k, key, finish } = await setup(t, { args: registerArgs });
  const req = http.request(`${k.url}/v1/contacts/import?list=cut`, {
    method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'text/csv' },
  });
  req.on('error', () => {});   // the request is cut off on purpose
  req.write(body.subarray(0, body.length >> 1));
  const listSize = async () => ((await k.request('GET', '/v1/lists', { key })).json.lists
    .find((l) => l.name === 'cut') ?? { size: 0 }).size;
  await waitUntil(async () => (await listSize()) > 0, 'rows in before the upload ends', 60000, 20);
  req.destroy();
  // The account is free again once kaskad sees the connection go: the next
  // import is the second one.
  let small;
  await waitUntil(async () => {
    small = await k.request('POST', '/v1/contacts/import?list=small', { key, body: 'phone\n79160000001\n' });
    if (small.status !== 202) assert.equal(small.status, 409, small.text);
    return small.status === 202;
  }, 'the account free again', 120000, 100);
  assert.equal(small.json.id, 'imp_2');
  const ended = async (id) => {
    let imp;
    await waitUntil(async () => {
      imp = (await k.request('GET', `/v1/imports/${id}`, { key })).json;
      return imp.status !== 'running';
    }, `${id} to end`, 60000, 20);
    return imp;
  };
  assert.equal((await ended('imp_2')).status, 'done');
  const cut = await ended('imp_1');
  assert.equal(cut.status, 'failed', JSON.stringify(cut));
  assert.match(cut.error, /broke off/);
  assert.ok(cut.rows_done > 0 && cut.rows_done < rows, JSON.stringify(cut));
  const kept = await listSize();
  assert.ok(kept > 0 && kept < rows, `${kept} rows kept`);
  const again = await runImport(k, key, body, 'list=cut');
  assert.equal(again.status, 'done', JSON.stringify(again));
  assert.equal(again.bytes_total, body.length);
  assert.equal(again.bytes_done, body.length);
  assert.equal(await listSize(), rows - rows / 100, 'each phone once');
  await finish();
});
