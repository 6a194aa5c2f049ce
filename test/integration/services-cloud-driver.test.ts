import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCloudContext } from '../../cloud/api/context.ts';
import { createCloudCaller } from '../../cloud/api/router.ts';
import { localCloud, vagothCloud } from '../../services/clouds/index.ts';
import type { CloudDriver } from '../../services/clouds/driver.ts';
import {
  CloudRefusedError,
  CloudUnreachableError,
  QuotaRefusedError,
  UnplaceableError,
} from '../../services/errors.ts';
import { cloudClient } from '../support/cloud-client.ts';
import { shopWithMember, smallImage } from '../support/cloud-cluster.ts';
import { startHarness, type Harness } from '../support/harness.ts';

/**
 * The service layer's cloud drivers against a real cloud: `local` (its router called
 * in-process) and `vagoth` (its API over HTTP), both with a member's token of one project,
 * answer the same and fail the same way for the same calls.
 */
describe('the service layer’s cloud drivers', () => {
  let image: Awaited<ReturnType<typeof smallImage>>;
  let h: Harness;
  const drivers: Record<'local' | 'vagoth', CloudDriver> = {} as never;

  beforeAll(async () => {
    image = await smallImage('vagoth-svc-clouds-');
    h = await startHarness({ cloud: {}, images: image.images() });
    await image.addHostWithImage(h, 'svc-host', { cpus: 8, memoryMiB: 8192 });
    const admin = cloudClient(h.cloud!.url, h.cloud!.adminToken);
    const token = await shopWithMember(admin, 'svc');
    await admin.quotas.set.mutate({ project: 'shop', instances: 3 });
    drivers.local = localCloud(
      createCloudCaller(createCloudContext(h.cloud!.deps, `Bearer ${token}`)),
    );
    drivers.vagoth = vagothCloud({ url: h.cloud!.url, token, timeoutMs: 5_000 });
  }, 60_000);

  afterAll(async () => {
    await h?.close();
    await image?.remove();
  });

  const template = (name: string, more: Record<string, unknown> = {}) => ({
    project: 'shop',
    name,
    vcpus: 1,
    memoryMiB: 64,
    image: 'base',
    nics: [{ network: 'default' }],
    ...more,
  });

  for (const kind of ['local', 'vagoth'] as const) {
    it(`${kind}: creates, lists by prefix, deletes, and names each refusal`, async () => {
      const d = drivers[kind];
      const made = await d.create(template(`${kind}-0`));
      expect(made).toMatchObject({ name: `${kind}-0`, project: 'shop', cluster: 'local' });
      // Times arrive as text whichever way the cloud was reached.
      expect(typeof made.createdAt).toBe('string');
      await d.create(template(`${kind}-1`));
      await d.create(template(`other-${kind}`));
      expect((await d.instances('shop', `${kind}-`)).map((i) => i.name)).toEqual([
        `${kind}-0`,
        `${kind}-1`,
      ]);

      // Over the quota of 3 instances: said so, with the limit.
      const over = await d.create(template(`${kind}-2`)).catch((e: unknown) => e);
      expect(over).toBeInstanceOf(QuotaRefusedError);
      expect((over as Error).message).toContain('instances quota: limit 3');
      await d.delete('shop', `other-${kind}`);
      // No room on any host: the allocator's reasons come back.
      const huge = await d.create(template(`${kind}-2`, { vcpus: 64 })).catch((e: unknown) => e);
      expect(huge).toBeInstanceOf(UnplaceableError);
      expect((huge as Error).message).toContain('no host there takes it');
      const bad = await d.create(template(`${kind}-2`, { vcpus: 0 })).catch((e: unknown) => e);
      expect(bad).toMatchObject({ code: 'BAD_REQUEST' });
      expect(bad).toBeInstanceOf(CloudRefusedError);

      // Deleting twice is no error; the listing follows.
      await d.delete('shop', `${kind}-1`);
      await d.delete('shop', `${kind}-1`);
      expect((await d.instances('shop', `${kind}-`)).map((i) => i.name)).toEqual([`${kind}-0`]);
      await d.delete('shop', `${kind}-0`);
      // Another project's instances are not the token's: the project is not there for it.
      const elsewhere = await d.instances('other', 'x').catch((e: unknown) => e);
      expect(elsewhere).toMatchObject({ code: 'NOT_FOUND' });
    });
  }

  it('answers a cloud that does not answer as unreachable, within its time', async () => {
    const far = vagothCloud({ url: 'http://127.0.0.1:9/cloud/trpc', token: 'x', timeoutMs: 1_000 });
    const started = Date.now();
    await expect(far.instances('shop', 'a')).rejects.toBeInstanceOf(CloudUnreachableError);
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
