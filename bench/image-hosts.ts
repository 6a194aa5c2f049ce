// The host side of bench/images: what a VM from an image costs on a libvirt host, each against
// a baseline run beside it. A private libvirtd (test/support/dir-pool-daemon.ts) keeps a
// directory pool on this machine's temp disk.
//
// - The first create on a host copies the image there (drivers/libvirt/image-cache.ts: upload,
//   read back, digest checked), against `cp` of the image file onto the same file system; both
//   synced.
// - A create from the host's copy (a qcow2 overlay, its seed ISO built and written, the domain
//   defined and started) against a create with a blank disk of the same size.
import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { DomainSpec } from '../drivers/driver.ts';
import { LibvirtDriver } from '../drivers/libvirt/libvirt-driver.ts';
import { buildSeedIso, seedFiles } from '../images/seed.ts';
import type { VmImage } from '../registry/types.ts';
import { startDirPoolDaemon } from '../test/support/dir-pool-daemon.ts';
import { vmSpec } from '../test/support/libvirt-hosts.ts';
import { median } from './support.ts';

const run = promisify(execFile);
const MiB = 1024 ** 2;

async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

const elapsed = async (fn: () => Promise<unknown>) => {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
};

/** Prints the first copy's and the overlay create's figures for a raw image `file`. */
export async function benchImageHosts(file: string, size: number, rounds: number) {
  const pool = `vagoth-bench-img-${randomUUID().slice(0, 8)}`;
  const daemon = await startDirPoolDaemon(pool);
  const driver = new LibvirtDriver({ uri: daemon.uri, pools: [pool], domainType: 'qemu' });
  const digest = await sha256(file);
  const image = (): VmImage => ({
    id: randomUUID(),
    name: 'bench',
    format: 'raw',
    sha256: digest,
    sizeBytes: size,
    virtualSize: size,
  });
  const times = {
    copy: [] as number[],
    cp: [] as number[],
    overlay: [] as number[],
    blank: [] as number[],
  };
  try {
    for (let round = 0; round < rounds; round++) {
      const copyFirst = round % 2 === 0;
      for (const which of copyFirst ? ['copy', 'cp'] : ['cp', 'copy']) {
        if (which === 'cp') {
          const out = path.join(daemon.linkDir, 'cp.raw');
          times.cp.push(
            await elapsed(async () => {
              await run('cp', [file, out]);
              await run('sync', ['--file-system', out]);
            }),
          );
          await rm(out);
          continue;
        }
        const img = image();
        const where = path.join(daemon.poolDir, driver.imageVolume(img).name);
        times.copy.push(
          await elapsed(async () => {
            await driver.copyImage(img, file);
            await run('sync', ['--file-system', where]);
          }),
        );
        await driver.removeImage(img);
      }
    }

    // Creates, from one copy of the image on the host, against blank disks of its size.
    const base = image();
    await driver.copyImage(base, file);
    const diskGiB = Math.max(1, Math.ceil(size / 1024 ** 3));
    for (let round = 0; round < rounds; round++) {
      for (const which of round % 2 === 0 ? ['overlay', 'blank'] : ['blank', 'overlay']) {
        const spec: DomainSpec =
          which === 'overlay'
            ? vmSpec({ memoryMiB: 64, vcpus: 1, diskGiB, image: base })
            : vmSpec({ memoryMiB: 64, vcpus: 1, diskGiB });
        const volumes = driver.volumesFor(spec);
        const full = { ...spec, volumes };
        const ms = await elapsed(async () => {
          const seed =
            which === 'overlay'
              ? await buildSeedIso(
                  seedFiles({
                    vmId: spec.id,
                    hostname: spec.name,
                    guest: { sshAuthorizedKeys: [] },
                    nics: [],
                  }),
                )
              : undefined;
          await driver.provision(full, seed ? { seed } : {});
          await driver.define(full);
          await driver.start(spec.name);
        });
        (which === 'overlay' ? times.overlay : times.blank).push(ms);
        await driver.deprovision(full);
      }
    }
    await driver.removeImage(base);
  } finally {
    await driver.close();
    await daemon.stop();
  }
  const mibs = (ms: number) => size / MiB / (ms / 1000);
  const cp = mibs(median(times.cp));
  const copy = mibs(median(times.copy));
  console.log(`first create on a host: the image copied there, median of ${rounds}`);
  console.log(`  cp (synced):                             ${cp.toFixed(0)} MiB/s`);
  console.log(
    `  copy to the host (upload, read back):    ${copy.toFixed(0)} MiB/s  ratio ${(copy / cp).toFixed(2)}x of cp`,
  );
  const overlay = median(times.overlay);
  const blank = median(times.blank);
  console.log(`create to running on that host (provision, define, start), median of ${rounds}`);
  console.log(`  blank disk:                              ${blank.toFixed(0)} ms`);
  console.log(
    `  overlay on the image, with its seed:     ${overlay.toFixed(0)} ms  ratio ${(overlay / blank).toFixed(2)}x of blank`,
  );
}
