// bench/disk-copy: a cold move's disk copy (drivers/libvirt/volume-copy.ts) against `cp` of the
// same file on the same disk, side by side in one process.
//
//   npm run bench:disk-copy -- [--mib 1024] [--rounds 3]
//
// Two private libvirtd daemons (test/support/dir-pool-daemon.ts), each with a directory pool on
// this machine's temp disk: a volume of `--mib` MiB is copied from one daemon's pool to the
// other's through libvirt's storage streams, and checked by digest as a move does; then `cp`
// copies the same file within the same disk. Rounds alternate the order, so both see the same
// page cache. Two volumes: `dense`, every byte random (no holes, so skipping them flatters
// nothing), and `sparse`, one 8 MiB extent of random bytes in every 64 MiB and holes between
// (a VM's disk as it mostly is: far from full), where `cp` keeps the holes too.
// Prints each figure, the ratio of throughputs (copy / cp) and the CPU the whole copy took
// (this process and both daemons) per GiB, never an assertion.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { open, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import { LibvirtDriver } from '../drivers/libvirt/libvirt-driver.ts';
import { copyVolume, verifyStep } from '../drivers/libvirt/volume-copy.ts';
import { locateVolumes } from '../drivers/libvirt/volumes.ts';
import { connections } from '../drivers/libvirt/connections.ts';
import { startDirPoolDaemon } from '../test/support/dir-pool-daemon.ts';
import { vmSpec } from '../test/support/libvirt-hosts.ts';

const run = promisify(execFile);
const MiB = 1024 ** 2;
const { values } = parseArgs({
  options: {
    mib: { type: 'string', default: '1024' },
    rounds: { type: 'string', default: '3' },
  },
});
const size = Number(values.mib) * MiB;
const rounds = Number(values.rounds);
if (!(size > 0) || size % MiB !== 0 || !Number.isInteger(rounds) || rounds < 1) {
  throw new Error('--mib and --rounds must be whole numbers >= 1');
}

type Kind = 'dense' | 'sparse';

async function fillRandom(file: string, kind: Kind) {
  const handle = await open(file, 'r+');
  try {
    const stride = kind === 'dense' ? 8 * MiB : 64 * MiB;
    for (let o = 0; o < size; o += stride) await handle.write(randomBytes(8 * MiB), 0, 8 * MiB, o);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** CPU seconds so far of the processes whose command line names one of `dirs` (the daemons). */
async function daemonCpu(dirs: string[]): Promise<number> {
  const tick = 100; // USER_HZ
  let total = 0;
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
      if (!dirs.some((d) => cmdline.includes(d))) continue;
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += (Number(fields[11]) + Number(fields[12])) / tick;
    } catch {
      // gone meanwhile
    }
  }
  return total;
}

async function main() {
  const pool = 'vagoth-bench-copy';
  const [a, b] = await Promise.all([startDirPoolDaemon(pool), startDirPoolDaemon(pool)]);
  const drivers = [a, b].map((d) => new LibvirtDriver({ uri: d.uri, pools: [pool] }));
  const dirs = [a.daemon.dir, b.daemon.dir];
  try {
    const spec = vmSpec({ diskGiB: 1 });
    const volumes = drivers[0]!.volumesFor(spec);
    const ref = volumes[0]!;
    // A volume of exactly --mib MiB: made by the daemon, then sized and filled from outside.
    await drivers[0]!.provision({ ...spec, volumes });
    const source = path.join(a.poolDir, ref.name);
    for (const kind of ['dense', 'sparse'] as const) {
      await run('truncate', ['--size', '0', source]);
      await run('truncate', ['--size', String(size), source]);
      await fillRandom(source, kind);
      const copies = { stream: [] as number[], copyOnly: [] as number[], cp: [] as number[] };
      const cpu: number[] = [];
      for (let round = 0; round < rounds; round++) {
        const order = round % 2 === 0 ? ['stream', 'cp'] : ['cp', 'stream'];
        for (const which of order) {
          if (which === 'cp') {
            const target = path.join(a.linkDir, 'cp.img');
            const t0 = performance.now();
            await run('cp', [source, target]);
            await run('sync', ['--file-system', target]);
            copies.cp.push(performance.now() - t0);
            await rm(target);
            continue;
          }
          await drivers[1]!.provision({ ...spec, volumes });
          await run('truncate', ['--size', String(size), path.join(b.poolDir, ref.name)]);
          const sides = await Promise.all(
            [a, b].map(async (d) => {
              const lease = connections.lease(d.uri);
              const conn = await lease.get();
              await (await conn.lookupStoragePoolByName(pool)).refresh();
              const [v] = await locateVolumes(conn, spec.id, volumes, [pool]);
              return { v: v!, lease };
            }),
          );
          const from = sides[0]!;
          const to = sides[1]!;
          let copied = 0;
          const cpu0 = process.cpuUsage();
          const daemons0 = await daemonCpu(dirs);
          const t0 = performance.now();
          await copyVolume(
            { ref, source: from.v.vol, target: to.v.vol, capacity: from.v.capacity },
            {
              simulated: false,
              onProgress: (p) => {
                if (p.step === verifyStep(ref) && copied === 0) copied = performance.now() - t0;
              },
            },
          );
          await run('sync', ['--file-system', path.join(b.poolDir, ref.name)]);
          copies.stream.push(performance.now() - t0);
          copies.copyOnly.push(copied);
          const own = process.cpuUsage(cpu0);
          cpu.push((own.user + own.system) / 1e6 + (await daemonCpu(dirs)) - daemons0);
          from.v.vol.free();
          to.v.vol.free();
          await Promise.all([from.lease.release(), to.lease.release()]);
          await drivers[1]!.deprovision({ ...spec, volumes });
        }
      }
      const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
      const mibs = (ms: number) => size / MiB / (ms / 1000);
      const cp = mibs(median(copies.cp));
      const stream = mibs(median(copies.stream));
      const copyOnly = mibs(median(copies.copyOnly));
      const cpuPerGiB = median(cpu) / (size / 1024 ** 3);
      console.log(`${kind} volume of ${size / MiB} MiB, median of ${rounds} rounds`);
      console.log(`  cp (same disk, synced):               ${cp.toFixed(0)} MiB/s`);
      console.log(
        `  libvirt streams, copy phase:          ${copyOnly.toFixed(0)} MiB/s  ratio ${(copyOnly / cp).toFixed(2)}x`,
      );
      console.log(
        `  libvirt streams, copy + digest check: ${stream.toFixed(0)} MiB/s  ratio ${(stream / cp).toFixed(2)}x` +
          `  (${cpuPerGiB.toFixed(1)} CPU s/GiB, worker and both daemons)`,
      );
    }
  } finally {
    await Promise.allSettled(drivers.map((d) => d.close()));
    await Promise.allSettled([a.stop(), b.stop()]);
  }
}

await main();
