// GET /v1/numbers/{phone}: the numbering register's operator, INN, region
// and time zone of a number; without a register, nulls and source "none";
// a register folder that cannot be read stops kaskad at start.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { setup, ROOT, kaskadBin, tempDir } from './lib/harness.mjs';

const REGISTER = process.env.KASKAD_NUMBERING || path.resolve(ROOT, '../shared/data/numbering-ru');
// Skipped only where the project's sibling folder ../shared is absent
// altogether (and not under CI); with ../shared there, a missing register fails.
const haveShared = process.env.KASKAD_NUMBERING || fs.existsSync(path.resolve(ROOT, '../shared/SPEC.md'));

test('numbers: operator, region and time zone from the register', {
  skip: !haveShared && !process.env.CI && 'no ../shared beside the project, so no numbering register',
}, async (t) => {
  const { k, key, finish } = await setup(t, { args: ['--numbering', REGISTER] });
  const get = (p) => k.request('GET', `/v1/numbers/${encodeURIComponent(p)}`, { key });
  const cases = [
    ['+7 (911) 451-23-45', '79114512345', '7740000076', 'Europe/Kaliningrad', '+02:00'],
    ['89161234567', '79161234567', '7740000076', 'Europe/Moscow', '+03:00'],
    ['9139123456', '79139123456', '7740000076', 'Asia/Novosibirsk', '+07:00'],
    ['79242345678', '79242345678', '7812014560', 'Asia/Vladivostok', '+10:00'],
  ];
  for (const [asked, phone, inn, tz, off] of cases) {
    const r = await get(asked);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.phone, phone);
    assert.equal(r.json.country, 'RU');
    assert.equal(r.json.inn, inn, r.text);
    assert.equal(r.json.timezone, tz, r.text);
    assert.equal(r.json.utc_offset, off, r.text);
    assert.ok(r.json.operator && r.json.region, r.text);
    assert.equal(r.json.source, 'register');
    assert.equal(r.json.mnp, null);
  }
  // A number the register does not hold, a number that is not one.
  const foreign = await get('+380501234567');
  assert.equal(foreign.status, 200, foreign.text);
  assert.equal(foreign.json.source, 'unknown');
  assert.equal(foreign.json.operator, null);
  assert.equal(foreign.json.country, 'UA');
  const bad = await get('abc');
  assert.equal(bad.status, 422, bad.text);
  assert.equal(bad.json.error.code, 'invalid_phone');
  assert.equal((await k.request('GET', '/v1/numbers/79161234567', { key: null })).status, 401);
  assert.equal((await k.request('GET', '/v1/numbers/79161234567')).status, 200, 'the operator may ask too');
  await finish();
});

test('numbers: without a register every field is null; a bad register folder stops the start', async (t) => {
  const { k, key, finish } = await setup(t);
  const r = await k.request('GET', '/v1/numbers/79161234567', { key });
  assert.equal(r.status, 200, r.text);
  assert.deepEqual(
    [r.json.operator, r.json.inn, r.json.region, r.json.timezone, r.json.utc_offset, r.json.source],
    [null, null, null, null, null, 'none']);
  await finish();
  const dir = await tempDir();
  try {
    const run = spawnSync(kaskadBin(), ['--data', dir, '--http', '127.0.0.1:0', '--numbering', dir],
      { encoding: 'utf8', timeout: 20000 });
    assert.equal(run.status, 2, run.stderr);
    assert.match(run.stderr, /numbering/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
