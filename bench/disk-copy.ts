// bench/disk-copy: a cold move's disk copy (drivers/libvirt/volume-copy.ts) against `cp` of the
// same file on the same disk, side by side in one process.
//
//   npm run bench:disk-copy -- [--mib 1024] [--rounds 3]
//
// Two private libvirtd daemons (test/support/dir-pool-daemon.ts), each with a directory pool on
// this machine's temp disk: a volume of `--mib` MiB is copied from one daemon's pool to the
// other's through libvirt's storage streams and checked by digest, as a move does (copyDisks);
// then `cp` copies the same file within the same disk, and libvirt's own tools copy the volume
// between the daemons with no check (`virsh vol-download | virsh vol-upload`): what one stream
// each way gives here. Rounds alternate the order, so both see the same
// page cache. Two volumes: `dense`, every byte random (no holes, so skipping them flatters
// nothing), and `sparse`, one 8 MiB extent of random bytes in every 64 MiB and holes between
// (a VM's disk as it mostly is: far from full), where `cp` keeps the holes too.
// Prints each figure, the ratios of throughputs (copy / cp, copy / virsh's pipe) and the CPU the
// whole copy took (this process and both daemons) per GiB, never an assertion.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { open, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { LibvirtDriver } from '../drivers/libvirt/libvirt-driver.ts';
import { copyDisks } from '../drivers/libvirt/disk-move.ts';
import { open as openLibvirt } from '../native/libvirt/index.ts';
import { connections } from '../drivers/libvirt/connections.ts';
import { startDirPoolDaemon } from '../test/support/dir-pool-daemon.ts';
import { vmSpec } from '../test/support/libvirt-hosts.ts';
import { median, sizeAndRounds } from './support.ts';

const run = promisify(execFile);
const MiB = 1024 ** 2;
const shell = (line: string) => run('sh', ['-c', line], { maxBuffer: 1 << 20 });
const { size, rounds } = sizeAndRounds();

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

/**
 * CPU seconds so far of the processes whose command line or environment names one of `dirs`:
 * the daemons (whose HOME is their directory) and what they run.
 */
async function daemonCpu(dirs: string[]): Promise<number> {
  const tick = 100; // USER_HZ
  let total = 0;
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
      const environ = await readFile(`/proc/${pid}/environ`, 'utf8');
      if (!dirs.some((d) => cmdline.includes(d) || environ.includes(`HOME=${d}\0`))) continue;
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
      const copies = { stream: [] as number[], virsh: [] as number[], cp: [] as number[] };
      const cpu: number[] = [];
      for (let round = 0; round < rounds; round++) {
        const order = round % 2 === 0 ? ['stream', 'cp', 'virsh'] : ['virsh', 'cp', 'stream'];
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
          if (which === 'virsh') {
            const t0 = performance.now();
            await shell(
              `virsh -q -c '${a.uri}' vol-download --pool ${pool} ${ref.name} /dev/stdout | ` +
                `virsh -q -c '${b.uri}' vol-upload --pool ${pool} ${ref.name} /dev/stdin`,
            );
            await run('sync', ['--file-system', path.join(b.poolDir, ref.name)]);
            copies.virsh.push(performance.now() - t0);
            await drivers[1]!.deprovision({ ...spec, volumes });
            continue;
          }
          const leases = [a, b].map((d) => connections.lease(d.uri));
          const [from, to] = await Promise.all(
            leases.map(async (lease) => {
              const conn = await lease.get();
              await (await conn.lookupStoragePoolByName(pool)).refresh();
              return conn;
            }),
          );
          const cpu0 = process.cpuUsage();
          const daemons0 = await daemonCpu(dirs);
          const t0 = performance.now();
          await copyDisks(
            {
              source: from!,
              target: to!,
              vmId: spec.id,
              volumes,
              pools: [pool],
              sharedPools: [],
              simulated: false,
              bytesPerSecond: 0,
              openLane: (side) => openLibvirt(side === 'source' ? a.uri : b.uri),
            },
            {},
          );
          await run('sync', ['--file-system', path.join(b.poolDir, ref.name)]);
          copies.stream.push(performance.now() - t0);
          const own = process.cpuUsage(cpu0);
          cpu.push((own.user + own.system) / 1e6 + (await daemonCpu(dirs)) - daemons0);
          await Promise.all(leases.map((lease) => lease.release()));
          await drivers[1]!.deprovision({ ...spec, volumes });
        }
      }
      const mibs = (ms: number) => size / MiB / (ms / 1000);
      const cp = mibs(median(copies.cp));
      const stream = mibs(median(copies.stream));
      const virsh = mibs(median(copies.virsh));
      const cpuPerGiB = median(cpu) / (size / 1024 ** 3);
      console.log(`${kind} volume of ${size / MiB} MiB, median of ${rounds} rounds`);
      console.log(`  cp (same disk, synced):                    ${cp.toFixed(0)} MiB/s`);
      console.log(
        `  virsh vol-download | vol-upload, no check: ${virsh.toFixed(0)} MiB/s  ratio ${(virsh / cp).toFixed(2)}x of cp`,
      );
      console.log(
        `  vagoth copy + digest check:                ${stream.toFixed(0)} MiB/s  ratio ${(stream / cp).toFixed(2)}x of cp, ` +
          `${(stream / virsh).toFixed(2)}x of virsh  (${cpuPerGiB.toFixed(1)} CPU s/GiB, worker and both daemons)`,
      );
    }
  } finally {
    await Promise.allSettled(drivers.map((d) => d.close()));
    await Promise.allSettled([a.stop(), b.stop()]);
  }
}

await main();
