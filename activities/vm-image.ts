import { activityInfo, cancellationSignal, heartbeat, sleep } from '@temporalio/activity';
import type { Driver } from '../drivers/index.ts';
import { buildSeedIso, seedFiles, type SeedNetwork } from '../images/seed.ts';
import type { ImageStore } from '../images/store.ts';
import type { Sql } from '../registry/db.ts';
import {
  COPY_LEASE_SECONDS,
  forgetHostImageCopy,
  hostIdByName,
  settleHostImageLease,
  takeHostImage,
} from '../registry/host-images.ts';
import { NotFoundError } from '../registry/errors.ts';
import { getNetwork } from '../registry/networks.ts';
import { imageParts } from '../registry/images.ts';
import type { Vm, VmImage } from '../registry/types.ts';
import { heartbeating } from './vm-helpers.ts';

/** How often a copy renews its lease: well within COPY_LEASE_SECONDS. */
const RENEW_MS = (COPY_LEASE_SECONDS * 1000) / 3;
/** How often a VM waiting for another's copy asks again. */
const WAIT_MS = 1_000;

/**
 * The steps a VM from an image needs before its volumes are made on a host: the image there
 * (copied once per host, whoever asks first), and its cloud-init seed.
 */
export function vmImageSteps(sql: Sql, store: ImageStore | undefined) {
  /**
   * Makes sure the host holds the VM's image: copies it there unless the registry records a
   * copy ready, one copier per host and image (the registry's lease; a VM that finds another
   * copying waits, heartbeating, and a dead copier's lease passes on). The copy goes on from
   * an earlier attempt's heartbeat. A driver that keeps images itself (geats) is left alone.
   */
  async function imageOnHost(vm: Vm, hostName: string, driver: Driver): Promise<void> {
    const image = vm.definition.image;
    if (!image || !driver.imageVolume || !driver.copyImage) return;
    if (!store) throw new Error('this worker has no image store configured');
    const host = { id: await hostIdByName(sql, hostName), name: hostName };
    for (const part of imageParts(image)) await partOnHost(part, host, driver, store);
  }

  /** One image (a VM's, or the kernel or initrd it boots) on the host, as imageOnHost says. */
  async function partOnHost(
    image: VmImage,
    { id: hostId, name: hostName }: { id: string; name: string },
    driver: Driver,
    store: ImageStore,
  ): Promise<void> {
    const where = driver.imageVolume!(image);
    const info = activityInfo();
    // The same activity's next attempt takes its own lease back; any other waits for it.
    const run = info.workflowExecution;
    const copier = `${run?.workflowId ?? ''}/${run?.runId ?? ''}/${info.activityId}`;
    const signal = cancellationSignal();
    for (;;) {
      const turn = await takeHostImage(
        sql,
        hostId,
        image.id,
        { pool: where.pool, volume: where.name },
        copier,
      );
      if (turn === 'ready') {
        // Recorded, but gone from the host (removed by hand): copied again, not failed for ever.
        if (!driver.hasImage || (await driver.hasImage(image))) return;
        await forgetHostImageCopy(sql, hostId, image.id);
        continue;
      }
      if (turn === 'wait') {
        heartbeat({ step: 'image-wait', done: 0, total: image.sizeBytes, host: hostName });
        await sleep(WAIT_MS);
        signal.throwIfAborted();
        continue;
      }
      const lost = new AbortController();
      // A lease that cannot be renewed (lost, or the registry out of reach) stops the copy: an
      // attempt that goes on takes it again, or waits for whoever has it.
      const renew = setInterval(() => {
        const stop = () => lost.abort(new Error(`the copy of ${image.name} lost its lease`));
        settleHostImageLease(sql, hostId, image.id, copier, 'renew').then(
          (held) => held || stop(),
          stop,
        );
      }, RENEW_MS);
      try {
        await heartbeating(
          (progress) =>
            driver.copyImage!(image, store.fileOf(image.id, image.format), {
              ...progress,
              signal: AbortSignal.any([lost.signal, progress.signal ?? signal]),
            }),
          hostName,
        );
      } catch (err) {
        // Waiting VMs need not outwait the lease of a copy that failed.
        await settleHostImageLease(sql, hostId, image.id, copier, 'release').catch(() => false);
        throw err;
      } finally {
        clearInterval(renew);
      }
      if (await settleHostImageLease(sql, hostId, image.id, copier, 'ready')) return;
    }
  }

  /** The VM's cloud-init seed as an ISO, for a VM from an image; none for others. */
  async function seedOf(vm: Vm): Promise<Buffer | undefined> {
    const { image, guest, nics } = vm.definition;
    if (!image) return undefined;
    const nets = new Map<string, SeedNetwork | null>();
    for (const nic of nics) {
      if (nets.has(nic.network)) continue;
      // A NIC on a network vagoth does not keep (a host's bridge) is left to DHCP; any other
      // failure to read one fails the step, to be retried, rather than write a wrong seed.
      const net = await getNetwork(sql, nic.network).catch((err: unknown) => {
        if (err instanceof NotFoundError) return null;
        throw err;
      });
      nets.set(nic.network, net && { cidr: net.cidr, gateway: net.gateway, dns: net.dns });
    }
    const files = seedFiles({
      vmId: vm.id,
      hostname: vm.name,
      guest: guest ?? { sshAuthorizedKeys: [] },
      nics: nics.map((nic) => ({ ...nic, net: nets.get(nic.network) ?? null })),
    });
    return buildSeedIso(files);
  }

  return { imageOnHost, seedOf };
}
