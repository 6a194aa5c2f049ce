import { randomUUID } from 'node:crypto';
import { unlink } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connections } from '../../drivers/libvirt/connections.ts';
import { LibvirtDriver } from '../../drivers/libvirt/libvirt-driver.ts';
import { REPORT_ONLY, type ReconcilePolicies } from '../../monitor/reconcile.ts';
import { setHostState } from '../../registry/hosts.ts';
import { getVm } from '../../registry/vms.ts';
import { releaseMigrationTarget, reserveMigrationTarget } from '../../registry/vm-migration.ts';
import { ensureMonitorSchedule } from '../../workers/schedules.ts';
import { attributeKey } from '../../common/search-attributes.ts';
import type { TypedSearchAttributes } from '@temporalio/common';
import { monitorCluster, type MonitorReport } from '../../workflows/index.ts';
import { foreignDomainXml, vmSpec } from '../support/libvirt-hosts.ts';
import { startHarness, type Harness } from '../support/harness.ts';

let h: Harness;
const uris = new Map<string, string>();
const drivers: LibvirtDriver[] = [];

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await Promise.allSettled(drivers.map((d) => d.close()));
  await h?.close();
});

async function addHost(name: string, memoryMiB = 16384) {
  const uri = await h.simulatedHost(name, { memoryMiB });
  uris.set(name, uri);
  await h.api.hosts.register({ name, driver: 'libvirt', uri });
}

/**
 * Reaches the simulated hypervisor behind vagoth's back: in this process every connection to
 * a test:/// URI is shared (drivers/libvirt/connections.ts), so this is the host the worker sees.
 */
function behindTheBack(host: string): LibvirtDriver {
  const driver = new LibvirtDriver({ uri: uris.get(host)! });
  drivers.push(driver);
  return driver;
}

async function running(name: string, host: string) {
  const { vm } = await h.api.vms.create({ name, vcpus: 1, memoryMiB: 1024, placement: { host } });
  for (let i = 0; i < 240; i++) {
    const now = await h.api.vms.get({ name });
    if (now.state === 'running') return now;
    if (now.state === 'failed') throw new Error(`${name} failed: ${now.error}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${name} (${vm.id}) never ran`);
}

/** A run with explicit policies, as the schedule starts it. */
const monitor = (hosts: string[], policies: Partial<ReconcilePolicies> = {}) =>
  h.temporal.workflow.execute(monitorCluster, {
    args: [{ hosts, policies: { ...REPORT_ONLY, ...policies } }],
    taskQueue: h.taskQueue,
    workflowId: `monitor-test-${randomUUID()}`,
  });

const kinds = (report: MonitorReport) =>
  report.discrepancies.map((d) => `${d.kind}:${d.vm ?? d.domain}`).sort();

describe('the monitor reports what differs, and by default touches nothing', () => {
  it('finds a foreign domain, a vanished VM and a stopped one, and records the host figures', async () => {
    await addHost('hv-a');
    await running('keep-1', 'hv-a');
    const gone = await running('gone-1', 'hv-a');
    await running('drift-1', 'hv-a');
    const back = behindTheBack('hv-a');
    await back.undefine({ id: gone.id, name: 'gone-1' });
    await back.stop('drift-1');
    const conn = await connections.lease(uris.get('hv-a')!).get();
    const intruder = await conn.defineDomainXML(foreignDomainXml('intruder'));
    await intruder.create();
    intruder.free();

    const report = await h.api.hosts.poll({ name: 'hv-a' });
    expect(kinds(report)).toEqual(['drifted:drift-1', 'missing:gone-1', 'unknownForeign:intruder']);
    expect(report.counts).toMatchObject({ missing: 1, drifted: 1, unknownForeign: 1 });
    // Report only: the foreign domain still runs, the registry still says what it said.
    expect((await back.info('intruder'))?.state).toBe('running');
    expect(await h.api.vms.get({ name: 'gone-1' })).toMatchObject({
      state: 'running',
      host: 'hv-a',
    });
    expect(await h.api.vms.get({ name: 'drift-1' })).toMatchObject({ state: 'running' });
    expect(report.actions.map((a) => a.kind)).toEqual(['host-figures']);

    // Free memory: 16 GiB less keep-1's GiB and the intruder's 128 MiB (drift-1 is stopped).
    const node = await h.api.nodes.get({ name: 'hv-a' });
    expect(node.metadata).toMatchObject({
      freeMemoryMiB: 16384 - 1024 - 128,
      reachable: true,
      discrepancies: { missing: 1, drifted: 1, unknownForeign: 1 },
    });
    const events = (await h.api.nodes.events({ name: 'hv-a', limit: 20 })).items;
    expect(events.find((e) => e.actor === 'monitor')?.operation).toMatch(/^monitor:poll:hv-a\//);
    // The API shows the last report.
    expect((await h.api.hosts.monitor())?.report).toMatchObject({ counts: report.counts });
  });

  it('refuses to poll a host it does not know, naming it', async () => {
    await expect(h.api.hosts.poll({ name: 'nope' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('a host that stops answering', () => {
  it('is marked down after the threshold, its VMs are not missing, and it comes back', async () => {
    await addHost('hv-down');
    await running('far-1', 'hv-down');
    const uri = uris.get('hv-down')!;
    // The hypervisor goes away: its description is gone, and so is the open connection.
    const lease = connections.lease(uri);
    lease.drop(await lease.get());
    await unlink(fileURLToPath(uri.replace(/^test:/, 'file:')));
    await new Promise((r) => setTimeout(r, 100));

    for (const failures of [1, 2]) {
      const report = await h.api.hosts.poll({ name: 'hv-down' });
      expect(report.hosts).toMatchObject([{ name: 'hv-down', answered: false, failures }]);
      expect((await h.api.hosts.get({ name: 'hv-down' })).state).toBe('active');
    }
    const third = await h.api.hosts.poll({ name: 'hv-down' });
    expect(third.discrepancies).toEqual([]);
    expect(third.actions).toContainEqual({
      kind: 'host-down',
      target: 'hv-down',
      outcome: 'applied',
    });
    expect((await h.api.hosts.get({ name: 'hv-down' })).state).toBe('down');
    expect(await h.api.vms.get({ name: 'far-1' })).toMatchObject({
      state: 'running',
      host: 'hv-down',
    });

    // It answers again (an empty hypervisor now): back to active, the monitor having put it down.
    await h.simulatedHost('hv-down');
    await h.api.hosts.poll({ name: 'hv-down' });
    expect((await h.api.hosts.get({ name: 'hv-down' })).state).toBe('active');
    await lease.release();
  });

  it('never takes a host out of an operator’s maintenance, down or back', async () => {
    await addHost('hv-maint');
    await setHostState(h.sql, 'hv-maint', 'maintenance');
    const uri = uris.get('hv-maint')!;
    const lease = connections.lease(uri);
    lease.drop(await lease.get());
    await unlink(fileURLToPath(uri.replace(/^test:/, 'file:')));
    await new Promise((r) => setTimeout(r, 100));
    for (let i = 0; i < 4; i++) await h.api.hosts.poll({ name: 'hv-maint' });
    expect((await h.api.hosts.get({ name: 'hv-maint' })).state).toBe('maintenance');
    await h.simulatedHost('hv-maint');
    await h.api.hosts.poll({ name: 'hv-maint' });
    expect((await h.api.hosts.get({ name: 'hv-maint' })).state).toBe('maintenance');
    await lease.release();
  });

  it('never brings back a host an operator marked down', async () => {
    await addHost('hv-fenced');
    await setHostState(h.sql, 'hv-fenced', 'down');
    const report = await h.api.hosts.poll({ name: 'hv-fenced' });
    expect(report.hosts).toMatchObject([{ name: 'hv-fenced', answered: true }]);
    expect((await h.api.hosts.get({ name: 'hv-fenced' })).state).toBe('down');
  });
});

describe('policies other than report', () => {
  it('unknownOurs=power-off stops a stray vagoth domain, never a registered VM', async () => {
    await addHost('hv-p1');
    await running('mine-1', 'hv-p1');
    const back = behindTheBack('hv-p1');
    const stray = vmSpec();
    await back.define(stray);
    await back.start(stray.name);

    const report = await monitor(['hv-p1'], { unknownOurs: 'power-off' });
    expect(kinds(report)).toEqual([`unknownOurs:${stray.name}`]);
    expect(report.actions).toContainEqual({
      kind: 'power-off',
      target: `${stray.name} on hv-p1`,
      outcome: 'applied',
    });
    expect((await back.info(stray.name))?.state).toBe('stopped');
    expect((await back.info('mine-1'))?.state).toBe('running');
  });

  it('unknownForeign=power-off stops a foreign domain', async () => {
    await addHost('hv-p2');
    const conn = await connections.lease(uris.get('hv-p2')!).get();
    const other = await conn.defineDomainXML(foreignDomainXml('someone-else'));
    await other.create();
    other.free();
    await monitor(['hv-p2'], { unknownForeign: 'power-off' });
    expect((await behindTheBack('hv-p2').info('someone-else'))?.state).toBe('stopped');
  });

  it('missing=unassign forgets the host of a VM it lost, and frees its room', async () => {
    await addHost('hv-p3');
    const vm = await running('lost-1', 'hv-p3');
    await behindTheBack('hv-p3').undefine({ id: vm.id, name: 'lost-1' });
    expect((await h.api.hosts.get({ name: 'hv-p3' })).allocated.memoryMiB).toBe(1024);

    const report = await monitor(['hv-p3'], { missing: 'unassign' });
    expect(report.actions).toContainEqual({
      kind: 'unassign',
      target: 'lost-1',
      outcome: 'applied',
    });
    expect(await h.api.vms.get({ name: 'lost-1' })).toMatchObject({
      state: 'failed',
      host: null,
      error: 'missing from host hv-p3 (found by the monitor)',
    });
    expect((await h.api.hosts.get({ name: 'hv-p3' })).allocated.memoryMiB).toBe(0);
    const events = (await h.api.nodes.events({ name: 'lost-1', limit: 5 })).items;
    expect(events[0]).toMatchObject({ actor: 'monitor', action: 'update' });
  });

  it('drifted=adopt records the state the host reports', async () => {
    await addHost('hv-p4');
    const vm = await running('revived-1', 'hv-p4');
    await h.sql`UPDATE nodes SET metadata = metadata || '{"state":"failed"}' WHERE id = ${vm.id}`;
    const report = await monitor(['hv-p4'], { drifted: 'adopt' });
    expect(kinds(report)).toEqual(['drifted:revived-1']);
    expect((await h.api.vms.get({ name: 'revived-1' })).state).toBe('running');
  });
});

describe('what the registry holds beside the VMs', () => {
  it('reports a hold no move needs, room held by no VM, and a VM stuck with an idle workflow', async () => {
    await addHost('hv-l1');
    await addHost('hv-l2');
    await running('held-1', 'hv-l1');
    await running('stuck-1', 'hv-l1');
    await running('fine-1', 'hv-l2');
    // A hold left behind: its VM runs where it was and moves nowhere.
    await reserveMigrationTarget(h.sql, await getVm(h.sql, 'held-1'), 'hv-l1', 'hv-l2', 'spread');
    // Room held on a host by a node that is no VM.
    await h.sql`
      WITH rack AS (INSERT INTO nodes (name, type) VALUES ('rack-l', 'rack') RETURNING id)
      INSERT INTO allocations (vm_id, host_id, vcpus, memory_mib, disk_gib)
      SELECT rack.id, (SELECT id FROM nodes WHERE name = 'hv-l2'), 1, 256, 0 FROM rack`;
    // A VM the registry says is migrating, for an hour, while its workflow runs nothing.
    await h.sql`
      UPDATE nodes SET metadata = metadata || '{"state": "migrating"}',
        updated_at = now() - interval '1 hour'
      WHERE name = 'stuck-1'`;

    const report = await monitor(['hv-l1', 'hv-l2'], { stuckAfterSeconds: 600 });
    const found = report.discrepancies.filter((d) =>
      ['orphanedHold', 'orphanedAllocation', 'stuck'].includes(d.kind),
    );
    expect(found.map((d) => [d.kind, d.host, d.vm])).toEqual([
      ['orphanedHold', 'hv-l2', 'held-1'],
      ['orphanedAllocation', 'hv-l2', undefined],
      ['stuck', 'hv-l1', 'stuck-1'],
    ]);
    expect(found.map((d) => d.detail)).toEqual([
      'migration hold held-1:migration holds room on hv-l2, but its VM held-1 is running',
      'rack rack-l holds room on hv-l2, and is no VM',
      expect.stringMatching(
        /^stuck-1 has been migrating for 36\d\d s or more, and its workflow has no operation under way$/,
      ),
    ]);
    expect(report.counts).toMatchObject({ orphanedHold: 1, orphanedAllocation: 1, stuck: 1 });
    // Reported only: the hold, the room and the VM's state are as they were.
    expect(report.actions.map((a) => a.kind)).toEqual(['host-figures', 'host-figures']);
    expect((await h.api.vms.get({ name: 'stuck-1' })).state).toBe('migrating');

    // Under the threshold, or once the hold is gone, nothing is said.
    await releaseMigrationTarget(h.sql, 'held-1');
    const later = await monitor(['hv-l1'], { stuckAfterSeconds: 7200 });
    expect(later.discrepancies.map((d) => d.kind)).toEqual(['orphanedAllocation']);
  });
});

describe('the schedule', () => {
  it('is created at start-up with the configured interval, and updated in place', async () => {
    const scheduleId = `vagoth-monitor-test-${randomUUID()}`;
    const options = {
      taskQueue: h.taskQueue,
      intervalSeconds: 3600,
      policies: { ...REPORT_ONLY, downAfter: 5 },
      scheduleId,
    };
    const handle = h.temporal.schedule.getHandle(scheduleId);
    try {
      expect(await ensureMonitorSchedule(h.temporal, options)).toBe('created');
      let described = await handle.describe();
      expect(described.spec.intervals).toMatchObject([{ every: 3_600_000 }]);
      expect(described.policies.overlap).toBe('SKIP');
      expect(described.action).toMatchObject({
        type: 'startWorkflow',
        workflowType: 'monitorCluster',
        taskQueue: h.taskQueue,
        args: [{ policies: options.policies }],
      });
      // An operator finds it in the UI by what it says it does.
      expect(String(described.memo?.purpose)).toMatch(/^Every 3600 s, polls every host/);
      expect(described.action).toMatchObject({
        staticSummary: 'monitor: poll every host and reconcile the registry',
      });
      const attributes = described.action.typedSearchAttributes as TypedSearchAttributes;
      expect(attributes.get(attributeKey('VagothKind'))).toBe('monitor');

      // A second start-up with another interval changes the one schedule, not a second one.
      expect(await ensureMonitorSchedule(h.temporal, { ...options, intervalSeconds: 45 })).toBe(
        'updated',
      );
      described = await handle.describe();
      expect(described.spec.intervals).toMatchObject([{ every: 45_000 }]);

      // What it starts is the monitor: a run now leaves its report where the API shows it.
      await handle.trigger();
      for (let i = 0; i < 120; i++) {
        const last = await h.api.hosts.monitor();
        if (String(last?.report.workflowId).startsWith(`monitor:cluster:${scheduleId}`)) return;
        await new Promise((r) => setTimeout(r, 250));
      }
      throw new Error('the triggered schedule never reported');
    } finally {
      await handle.delete().catch(() => {});
    }
  });
});
