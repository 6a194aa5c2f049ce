import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DriverError,
  type DomainSpec,
  type Driver,
  type DriverErrorKind,
} from '../../drivers/index.ts';
import type { HostAddress } from '../../registry/types.ts';

/** One empty host of the driver under test. */
export interface ContractHost {
  driver: Driver;
  hostAddress: HostAddress;
  cleanup(): Promise<void>;
}

export interface DriverContractOptions {
  name: string;
  /** A fresh, empty host; `label` is its name (migrate makes two). */
  create(label: string): Promise<ContractHost>;
  /** Whether the driver migrates between two such hosts; if not, migrate must say `unsupported`. */
  migrates: boolean;
  /** A VM another tool put on the host: without vagoth's marker. */
  defineForeign?(host: ContractHost, vmName: string): Promise<void>;
  /** Names of the volumes the host's storage holds, to see what provision and deprovision did. */
  volumeNames?(host: ContractHost): Promise<string[]>;
}

export function vmSpec(
  name: string,
  overrides: Partial<DomainSpec['definition']> = {},
): DomainSpec {
  const octet = () =>
    Math.floor(Math.random() * 256)
      .toString(16)
      .padStart(2, '0');
  return {
    id: randomUUID(),
    name,
    definition: {
      vcpus: 2,
      memoryMiB: 512,
      diskGiB: 1,
      nics: [
        { network: 'default', ip: '10.0.0.5', mac: `52:54:00:${octet()}:${octet()}:${octet()}` },
        { network: 'default', mac: `52:54:00:${octet()}:${octet()}:${octet()}` },
      ],
      placement: {},
      ...overrides,
    },
  };
}

async function failsWith(promise: Promise<unknown>, kind: DriverErrorKind): Promise<DriverError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, `expected a DriverError '${kind}'`).toBeInstanceOf(DriverError);
  expect((err as DriverError).kind, (err as Error).message).toBe(kind);
  return err as DriverError;
}

/** What the host's status says of one VM name: every domain so named. */
async function named(host: ContractHost, name: string) {
  return (await host.driver.status()).domains.filter((d) => d.name === name);
}

/** Registers the contract's tests: every Driver operation, the idempotent ones twice, the refusals. */
export function driverContract(o: DriverContractOptions): void {
  describe(`driver contract: ${o.name}`, () => {
    let host: ContractHost;
    const others: ContractHost[] = [];
    beforeEach(async () => {
      host = await o.create(`hv-${randomUUID().slice(0, 8)}`);
    });
    afterEach(async () => {
      await host.cleanup();
      await Promise.all(others.splice(0).map((h) => h.cleanup()));
    });
    const d = () => host.driver;

    it('status reports memory and every defined VM with its vCPUs, memory and MACs', async () => {
      const a = vmSpec('web-1');
      const b = vmSpec('db-1', { vcpus: 4, memoryMiB: 1024, nics: [] });
      await d().define(a);
      await d().define(b);
      const status = await d().status();
      expect(status.capacity.memoryMiB).toBeGreaterThan(0);
      expect(status.freeMemoryMiB).toBeGreaterThanOrEqual(0);
      expect(status.freeMemoryMiB).toBeLessThanOrEqual(status.capacity.memoryMiB);
      const ours = status.domains.filter((x) => x.vagothId !== null);
      expect(ours.map((x) => x.name).sort()).toEqual(['db-1', 'web-1']);
      for (const spec of [a, b]) {
        expect(ours.find((x) => x.name === spec.name)).toMatchObject({
          vagothId: spec.id,
          state: 'stopped',
          vcpus: spec.definition.vcpus,
          memoryMiB: spec.definition.memoryMiB,
          macs: spec.definition.nics.map((n) => n.mac),
        });
      }
    });

    it('define twice leaves one stopped VM', async () => {
      const spec = vmSpec('web-1');
      await d().define(spec);
      await d().define(spec);
      expect(await named(host, 'web-1')).toHaveLength(1);
      expect(await d().info('web-1')).toMatchObject({ vagothId: spec.id, state: 'stopped' });
    });

    it('define refuses a name the host holds for another VM, and keeps that one', async () => {
      const theirs = vmSpec('web-1');
      await d().define(theirs);
      await failsWith(d().define({ ...vmSpec('web-1'), id: randomUUID() }), 'not-ours');
      expect((await d().info('web-1'))?.vagothId).toBe(theirs.id);
    });

    it('start twice runs the VM and says so; stop twice stops it; stop of a VM gone is success', async () => {
      await d().define(vmSpec('web-1'));
      expect(await d().start('web-1')).toBe('running');
      expect(await d().start('web-1')).toBe('running');
      expect((await d().info('web-1'))?.state).toBe('running');
      await d().stop('web-1');
      await d().stop('web-1');
      expect((await d().info('web-1'))?.state).toBe('stopped');
      await d().stop('never-defined');
    });

    it('reboot keeps it running; shutdown stops it', async () => {
      await d().define(vmSpec('web-1'));
      await d().start('web-1');
      await d().reboot('web-1');
      expect((await d().info('web-1'))?.state).toBe('running');
      await d().shutdown('web-1', { timeoutMs: 10_000, force: true });
      expect((await d().info('web-1'))?.state).toBe('stopped');
    });

    it('info of an unknown VM is null; start and reboot of one fail not-found', async () => {
      expect(await d().info('nobody')).toBeNull();
      await failsWith(d().start('nobody'), 'not-found');
      await failsWith(d().reboot('nobody'), 'not-found');
    });

    it('undefine twice forgets the VM', async () => {
      const spec = vmSpec('web-1');
      await d().define(spec);
      await d().start('web-1');
      await d().undefine(spec);
      await d().undefine(spec);
      expect(await d().info('web-1')).toBeNull();
      expect(await named(host, 'web-1')).toHaveLength(0);
    });

    it('undefine refuses a VM created for another VM, and leaves it defined and running', async () => {
      const theirs = vmSpec('web-1');
      await d().define(theirs);
      await d().start('web-1');
      await failsWith(d().undefine({ id: randomUUID(), name: 'web-1' }), 'not-ours');
      expect(await d().info('web-1')).toMatchObject({ vagothId: theirs.id, state: 'running' });
    });

    it.skipIf(!o.defineForeign)(
      'undefine and deprovision refuse a VM vagoth did not create',
      async () => {
        await o.defineForeign!(host, 'theirs');
        expect((await d().info('theirs'))?.vagothId).toBeNull();
        await failsWith(d().undefine({ id: randomUUID(), name: 'theirs' }), 'not-ours');
        await failsWith(
          d().deprovision({ id: randomUUID(), name: 'theirs', volumes: [] }),
          'not-ours',
        );
        expect(await d().info('theirs')).not.toBeNull();
      },
    );

    it('provision twice creates the volumes volumesFor names; deprovision twice removes them', async () => {
      const spec = vmSpec('web-1');
      const volumes = d().volumesFor(spec);
      expect(volumes.length).toBeGreaterThan(0);
      expect(d().volumesFor(spec), 'volumesFor is pure').toEqual(volumes);
      // allocateVm claims no volumes, without asking the host, for a VM that wants no storage.
      expect(d().volumesFor(vmSpec('web-2', { diskGiB: 0, image: undefined }))).toEqual([]);
      expect(await d().provision(spec)).toEqual(volumes);
      expect(await d().provision(spec)).toEqual(volumes);
      await d().define({ ...spec, volumes });
      if (o.volumeNames)
        expect(await o.volumeNames(host)).toEqual(
          expect.arrayContaining(volumes.map((v) => v.name)),
        );
      await d().deprovision({ ...spec, volumes });
      await d().deprovision({ ...spec, volumes });
      expect(await d().info('web-1')).toBeNull();
      if (o.volumeNames) {
        const left = await o.volumeNames(host);
        for (const v of volumes) expect(left).not.toContain(v.name);
      }
    });

    it('deprovision refuses a volume not named for the VM, or a VM created for another, and removes nothing', async () => {
      const spec = vmSpec('web-1');
      const volumes = await d().provision(spec);
      await d().define({ ...spec, volumes });
      const pool = volumes[0]!.pool;
      const stranger = { pool, name: 'db-1-root' };
      await failsWith(d().deprovision({ ...spec, volumes: [...volumes, stranger] }), 'not-ours');
      await failsWith(d().deprovision({ id: randomUUID(), name: 'web-1', volumes }), 'not-ours');
      expect((await d().info('web-1'))?.vagothId).toBe(spec.id);
      if (o.volumeNames)
        expect(await o.volumeNames(host)).toEqual(
          expect.arrayContaining(volumes.map((v) => v.name)),
        );
    });

    it('migrate leaves the VM on exactly one host', async () => {
      const target = await o.create(`hv-${randomUUID().slice(0, 8)}`);
      others.push(target);
      const spec = vmSpec('web-1');
      await d().provision(spec);
      await d().define(spec);
      await d().start('web-1');
      const moved = d().migrate(spec, target.hostAddress);
      if (o.migrates) {
        expect(await moved).toMatchObject({ live: expect.any(Boolean) });
      } else {
        await failsWith(moved, 'unsupported');
      }
      const [here, there] = await Promise.all([named(host, 'web-1'), named(target, 'web-1')]);
      expect(here.length + there.length).toBe(1);
      expect((o.migrates ? there : here)[0]?.vagothId).toBe(spec.id);
    });
  });
}
