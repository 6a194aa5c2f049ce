// bench/driver: per-operation latency of the libvirt driver, and its overhead over the binding.
//
//   npm run bench:driver -- [--rounds 300] [--warmup 30] [--background 20]
//   npm run bench:driver -- --uri qemu:///system --domain-type qemu --pool vagoth --rounds 20
//
// By default the host is simulated by libvirt's test driver. `--uri` points the same bench at a
// real host (a real-qemu tier passes its URI): the VMs it creates are named vagoth-bench-* and
// deprovisioned again, `--pool` must exist there. Each round takes one VM through provision,
// define, start, info, status, stop, undefine and deprovision by the driver, then the same
// libvirt calls on the binding directly (the order alternating), so both see the same host.
// Figures are printed, never asserted.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { connections } from '../drivers/libvirt/connections.ts';
import { LibvirtDriver } from '../drivers/libvirt/libvirt-driver.ts';
import { writeSimulatedHost } from '../drivers/libvirt/simulated-host.ts';
import { libvirtVersion } from '../native/libvirt/index.ts';
import {
  bindingRound,
  driverRound,
  emptySamples,
  OPERATIONS,
  type RoundOptions,
  type Samples,
} from './driver-rounds.ts';
import { percentile } from './support.ts';

const { values } = parseArgs({
  options: {
    uri: { type: 'string' },
    'domain-type': { type: 'string' },
    pool: { type: 'string', default: 'vagoth' },
    'disk-gib': { type: 'string', default: '1' },
    rounds: { type: 'string', default: '300' },
    warmup: { type: 'string', default: '30' },
    background: { type: 'string', default: '20' },
  },
});

function count(name: string, value: string | undefined): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new Error(`--${name} must be a whole number, got ${value}`);
  return n;
}
const ROUNDS = count('rounds', values.rounds);
const WARMUP = count('warmup', values.warmup);
const BACKGROUND = count('background', values.background);

const dir = await mkdtemp(path.join(tmpdir(), 'vagoth-bench-'));
const simulated = values.uri === undefined;
const uri =
  values.uri ?? (await writeSimulatedHost(dir, 'bench', { cpus: 64, memoryMiB: 1 << 20 }));
const options: RoundOptions = {
  pool: values.pool,
  domainType: values['domain-type'] ?? (simulated ? 'test' : 'kvm'),
  diskGiB: count('disk-gib', values['disk-gib']),
};
const driver = new LibvirtDriver({ uri, pools: [options.pool], domainType: options.domainType });
// The driver's own connection: on a test:///<file> URI another one would be another host.
const lease = connections.lease(uri);
const conn = await lease.get();

try {
  // Stopped domains a status call must also describe, as on a host in use (simulated only).
  if (simulated) {
    for (let i = 0; i < BACKGROUND; i++) {
      const id = crypto.randomUUID();
      const definition = { vcpus: 1, memoryMiB: 64, diskGiB: 0, nics: [], placement: {} };
      await driver.define({ id, name: `background-${i}`, definition });
    }
  }
  const driverSamples = emptySamples();
  const bindingSamples = emptySamples();
  for (let round = 0; round < WARMUP + ROUNDS; round++) {
    const keep = round >= WARMUP;
    const d = keep ? driverSamples : emptySamples();
    const b = keep ? bindingSamples : emptySamples();
    if (round % 2 === 0) {
      await driverRound(driver, options, d);
      await bindingRound(conn, options, b);
    } else {
      await bindingRound(conn, options, b);
      await driverRound(driver, options, d);
    }
  }
  report(driverSamples, bindingSamples);
} finally {
  await driver.close();
  await lease.release();
  await rm(dir, { recursive: true, force: true });
}

function report(drv: Samples, bnd: Samples): void {
  const v = libvirtVersion;
  console.log(
    `libvirt ${Math.floor(v / 1e6)}.${Math.floor(v / 1e3) % 1e3}.${v % 1e3}, ${uri}` +
      `${simulated ? ` (simulated, ${BACKGROUND} other domains)` : ''}, ${ROUNDS} rounds after ${WARMUP} warm-up`,
  );
  const ms = (x: number) => ` ${x.toFixed(3).padStart(9)}`;
  console.log(
    `${'operation'.padEnd(12)}${'driver p50'.padStart(13)}${'p99'.padStart(10)}` +
      `${'binding p50'.padStart(16)}${'p99'.padStart(10)}${'ratio p50'.padStart(11)}`,
  );
  const ratios: number[] = [];
  for (const op of OPERATIONS) {
    const d = [...drv[op]].sort((a, b) => a - b);
    const b = [...bnd[op]].sort((a, b) => a - b);
    const ratio = percentile(d, 50) / percentile(b, 50);
    ratios.push(ratio);
    console.log(
      `${op.padEnd(12)}${ms(percentile(d, 50))} ms${ms(percentile(d, 99))}` +
        `${ms(percentile(b, 50))} ms${ms(percentile(b, 99))}${ratio.toFixed(2).padStart(10)}x`,
    );
  }
  const geomean = Math.exp(ratios.reduce((s, r) => s + Math.log(r), 0) / ratios.length);
  console.log(
    `driver / binding, geometric mean of the p50 ratios: ${geomean.toFixed(2)}x (target < 1.2x)`,
  );
}
