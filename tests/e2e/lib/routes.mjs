// Helpers of the route end-to-end tests: a numbering register of two
// operators and a kaskad with two routes "a" and "b", each to an SMSC of
// its own.
import fs from 'node:fs/promises';
import path from 'node:path';
import { Kaskad, tempDir } from './harness.mjs';
import { startSmsc } from './smsc.mjs';

export const MTS = '7740000076';
export const MEGAFON = '7812014560';
export const MTS_PHONE = '79161234567';       // the register: МТС
export const MEGAFON_PHONE = '79261234567';   // the register: МегаФон

/** A numbering register of two ranges (916: МТС, 926: МегаФон), in the ministry's format. */
export async function register() {
  const dir = await tempDir('kaskad-numbering-');
  await fs.writeFile(path.join(dir, 'DEF-9xx.csv'),
    'АВС/ DEF;От;До;Емкость;Оператор;Регион;Территория ГАР;ИНН\n' +
    `916;0000000;9999999;10000000;ПАО "МТС";г. Москва;г. Москва;${MTS}\n` +
    `926;0000000;9999999;10000000;ПАО "МегаФон";г. Москва;г. Москва;${MEGAFON}\n`);
  return dir;
}

/**
 * Two SMSCs (smsc: the options of both), a kaskad on the register (args:
 * more of its arguments) with routes "a" and "b" to them (a, b: their
 * settings over the SMSC's), bound, and an account; everything goes when t
 * ends (kaskad's last log lines shown when t failed).
 */
export async function twoRoutes(t, { args = [], smsc = {}, a = {}, b = {} } = {}) {
  const smscA = await startSmsc(smsc);
  const smscB = await startSmsc(smsc);
  const numbering = await register();
  const k = new Kaskad({ args: ['--numbering', numbering, ...args] });
  t.after(async () => {
    try {
      if (k.running()) await k.kill9();
      if (t.passed === false || process.env.KASKAD_E2E_VERBOSE) {
        for (const line of k.allStderr.split('\n').slice(-60)) t.diagnostic(`  ${line}`);
      }
    } finally {
      await k.cleanup();
      await smscA.close();
      await smscB.close();
      await fs.rm(numbering, { recursive: true, force: true });
    }
  });
  await k.start();
  await k.putRoute('a', smscA.routeConfig(a));
  await k.putRoute('b', smscB.routeConfig(b));
  await smscA.waitFor(() => smscA.boundSessions().length >= 1, 'route a to bind');
  await smscB.waitFor(() => smscB.boundSessions().length >= 1, 'route b to bind');
  const acct = await k.createAccount();
  return { k, smscA, smscB, acct, key: acct.key };
}
