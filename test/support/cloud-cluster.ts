import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { ImagesOptions } from '../../config.ts';
import type { CloudClient } from './cloud-client.ts';
import { inject } from 'vitest';
import type { OtherClouds } from '../../services/clouds/index.ts';
import { localCloudFor, startServicesWorker } from '../../workers/services.ts';
import type { Harness } from './harness.ts';

const run = promisify(execFile);

/**
 * A small qcow2 image (64 MiB, empty) in a directory the clusters of a cloud test may import
 * from: each harness gets `images(store)` as its image options, and `addHostWithImage` gives
 * it a simulated host and the image imported as `base`.
 */
export async function smallImage(prefix: string) {
  const root = await mkdtemp(path.join(tmpdir(), prefix));
  const allowed = path.join(root, 'allowed');
  await mkdir(allowed);
  const source = path.join(allowed, 'base.qcow2');
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', source, '64M']);
  return {
    images: (store = 'store'): ImagesOptions => ({
      store: path.join(root, store),
      sources: { dirs: [allowed], urls: [] },
      maxBytes: 1024 ** 3,
    }),
    async addHostWithImage(
      h: Harness,
      host: string,
      size: { cpus: number; memoryMiB: number; diskGiB?: number },
    ) {
      const uri = await h.simulatedHost(host, { cpus: size.cpus, memoryMiB: size.memoryMiB });
      await h.api.hosts.register({
        name: host,
        driver: 'libvirt',
        uri,
        diskGiB: size.diskGiB ?? 100,
      });
      const image = await h.api.images.create({ name: 'base', source });
      await h.temporal.workflow.getHandle(image.operation!.id, image.operation!.runId).result();
    },
    remove: () => rm(root, { recursive: true, force: true }),
  };
}

/**
 * A project `shop` with a member `user`, the local cluster's `base` image and `default` network
 * published to every project; answers a token of the member's narrowed to `shop`.
 */
export async function shopWithMember(admin: CloudClient, user: string): Promise<string> {
  await admin.projects.create.mutate({ project: 'shop' });
  await admin.users.create.mutate({ name: user });
  await admin.projects.addMember.mutate({ project: 'shop', user, role: 'member' });
  await admin.images.publish.mutate({ cluster: 'local', image: 'base' });
  await admin.networks.grant.mutate({ cluster: 'local', network: 'default' });
  return (await admin.tokens.create.mutate({ name: `${user}-shop`, user, project: 'shop' })).token;
}

/**
 * The service layer's worker over a harness's cloud, on its Temporal namespace; health checks
 * go only to the loopback range. `clouds`: other clouds services may span.
 */
export function servicesWorkerFor(h: Harness, clouds?: OtherClouds) {
  return startServicesWorker({
    address: inject('temporalAddress'),
    namespace: h.namespace,
    sql: h.sql,
    cloudFor: localCloudFor(h.cloud!.deps),
    ...(clouds ? { clouds } : {}),
    client: h.temporal,
    probe: { cidrs: ['127.0.0.0/8'], timeoutMs: 1_000 },
    revocationSweepMs: 1_000,
  });
}

/** Waits until `ok` holds (up to a minute); else fails naming `what` and, if given, `seen()`. */
export async function until(
  what: string,
  ok: () => Promise<boolean>,
  seen?: () => Promise<string>,
) {
  for (let i = 0; i < 300; i++) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`never: ${what}${seen ? ` (${await seen()})` : ''}`);
}
