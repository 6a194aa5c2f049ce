import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_DRIVERS_OPTIONS } from '../../drivers/index.ts';
import { LibvirtDriver } from '../../drivers/libvirt/libvirt-driver.ts';
import { startCluster, type Cluster } from '../support/cluster.ts';

const spec = (name: string) => ({
  id: '00000000-0000-4000-8000-00000000000' + name.slice(-1),
  name,
  definition: { vcpus: 1, memoryMiB: 64, diskGiB: 0, nics: [], placement: {} },
});

let cluster: Cluster;
beforeAll(async () => {
  cluster = await startCluster({ hosts: 2 });
});
afterAll(async () => {
  await cluster?.close();
});

describe('a cluster of libvirtd-backed simulated hosts', () => {
  it('shows a domain defined through one connection on another, on that host only', async () => {
    const [a, b] = cluster.hosts as [Cluster['hosts'][0], Cluster['hosts'][0]];
    // A driver of its own stands for a worker: another connection to the same daemon.
    const worker = new LibvirtDriver({ uri: a.uri, pools: DEFAULT_DRIVERS_OPTIONS.libvirt.pools });
    await worker.define(spec('shared-1'));
    await worker.start('shared-1');
    expect((await a.driver.info('shared-1'))?.state).toBe('running');
    expect(await b.driver.info('shared-1')).toBeNull();

    // The worker's connection goes away as a killed worker's would: the domain stays.
    await worker.close();
    const statuses = await cluster.statuses();
    const onA = statuses.get(a.name)!.domains.find((d) => d.name === 'shared-1');
    expect(onA).toMatchObject({ state: 'running', vagothId: spec('shared-1').id });

    const again = new LibvirtDriver({ uri: a.uri });
    expect((await again.info('shared-1'))?.vagothId).toBe(spec('shared-1').id);
    await again.undefine(spec('shared-1'));
    await again.close();
    expect(await a.driver.info('shared-1')).toBeNull();
  });
});
