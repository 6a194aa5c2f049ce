// Nodes that lifecycles own (VMs, hosts, migration holds) through the generic nodes.* API and
// past it, and a move whose target enters maintenance while the guest is on its way there.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vagothErrorData } from '../../api/errors.ts';
import { withActor } from '../../registry/context.ts';
import { markGeneric } from '../../registry/node-guard.ts';
import { getVm } from '../../registry/vms.ts';
import {
  commitMigration,
  migrationHoldName,
  releaseMigrationTarget,
  reserveMigrationTarget,
} from '../../registry/vm-migration.ts';
import { settle, startHarness, type Harness } from '../support/harness.ts';
import { refusal } from '../support/refusal.ts';

let h: Harness;
const HOSTS = ['lc-1', 'lc-2', 'lc-3'];

beforeAll(async () => {
  h = await startHarness();
  for (const name of HOSTS) {
    const uri = await h.simulatedHost(name, { cpus: 8, memoryMiB: 8192 });
    await h.api.hosts.register({ name, driver: 'libvirt', uri, diskGiB: 100 });
  }
});
afterAll(async () => {
  await h?.close();
});

async function createVm(name: string, host: string) {
  const { operation } = await h.api.vms.create({
    name,
    vcpus: 1,
    memoryMiB: 1024,
    nics: [{ network: 'default' }],
    placement: { host },
  });
  expect(await settle(h, operation)).toMatchObject({ status: 'completed' });
  return getVm(h.sql, name);
}

/** A hold's name has a ':', which no name given to the API has: found by the registry. */
async function holdOf(vm: string): Promise<{ id: string }> {
  const [hold] = await h.sql<{ id: string }[]>`
    SELECT id FROM nodes WHERE name = ${migrationHoldName(vm)} AND type = 'vm-migration'`;
  return hold!;
}

/** Everything nodes.* could change about a node: its row, its keys and its history's length. */
async function snapshot(id: string) {
  const [row] = await h.sql`
    SELECT name, type, tenant, parent_id, definition, metadata, tags FROM nodes WHERE id = ${id}`;
  const keys = await h.sql`SELECT key FROM node_keys WHERE node_id = ${id} ORDER BY key`;
  const [events] = await h.sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM node_events WHERE node_id = ${id}`;
  return { row, keys: keys.map((k) => k.key as string), events: events!.n };
}

/** Every VM's hosts: the registry's record and the room held, which must name one host. */
async function placements() {
  return h.sql<{ name: string; parent: string | null; room: string[] }[]>`
    SELECT v.name, p.name AS parent,
      ARRAY(SELECT hn.name FROM allocations a JOIN nodes hn ON hn.id = a.host_id
            WHERE a.vm_id = v.id) AS room
    FROM nodes v LEFT JOIN nodes p ON p.id = v.parent_id WHERE v.type = 'vm' ORDER BY v.name`;
}

describe('nodes.* against nodes a lifecycle owns', () => {
  it('refuses every change to a VM, a host and a migration hold, and changes nothing', async () => {
    const vm = await createVm('owned-1', 'lc-1');
    await reserveMigrationTarget(h.sql, vm, 'lc-1', 'lc-2', 'spread');
    const hold = await holdOf('owned-1');
    const host = await h.api.nodes.get({ name: 'lc-1' });
    await h.api.nodes.create({ name: 'owned-rack', type: 'rack' });
    const targets = [
      { id: vm.id, type: 'vm' },
      { id: host.id, type: 'host' },
      { id: hold.id, type: 'vm-migration' },
    ];
    for (const { id, type } of targets) {
      const before = await snapshot(id);
      const ordinary = before.keys.filter((k) => !k.startsWith('hypervisor:'));
      const attempts = [
        () => h.api.nodes.delete({ id }),
        () => h.api.nodes.rename({ id, newName: 'renamed' }),
        () => h.api.nodes.setParent({ id, parent: { name: 'owned-rack' } }),
        () => h.api.nodes.clearParent({ id }),
        () => h.api.nodes.updateDefinition({ id, definition: { vcpus: 64 } }),
        () => h.api.nodes.updateMetadata({ id, patch: { state: 'stopped' } }),
        () => h.api.nodes.changeKeys({ id, claim: ['ip:10.99.0.1'], release: ordinary }),
      ];
      if (type === 'vm-migration') {
        attempts.push(() => h.api.nodes.updateTags({ id, patch: { a: 'b' } }));
      }
      for (const attempt of attempts) {
        const err = await refusal(attempt());
        expect(err.code).toBe('FORBIDDEN');
        expect(err.message).toMatch(new RegExp(`^${type} \\S+ is owned by `));
        expect(vagothErrorData(err)).toMatchObject({ type: 'LifecycleOwned', details: { type } });
      }
      expect(await snapshot(id)).toEqual(before);
    }
  });

  it('never makes a VM or a hold a parent', async () => {
    const vm = await getVm(h.sql, 'owned-1');
    const hold = await holdOf('owned-1');
    await h.api.nodes.create({ name: 'owned-disk', type: 'disk' });
    for (const parent of [{ id: vm.id }, { id: hold.id }]) {
      const set = await refusal(h.api.nodes.setParent({ name: 'owned-disk', parent }));
      expect(set.code).toBe('FORBIDDEN');
      expect(set.message).toMatch(/^(vm|vm-migration) \S+ is owned by .*make it the parent of/);
      const created = await refusal(
        h.api.nodes.create({ name: 'owned-disk-2', type: 'disk', parent }),
      );
      expect(created.code).toBe('FORBIDDEN');
    }
    expect((await h.api.nodes.get({ name: 'owned-disk' })).parent).toBeNull();
    expect((await h.api.nodes.list({ parent: { id: vm.id } })).items).toEqual([]);
    // Nothing hangs under the VM: once its move is given up it can be removed, keys and all.
    await releaseMigrationTarget(h.sql, 'owned-1');
    const { operation } = await h.api.vms.decommission({ name: 'owned-1' });
    expect(await settle(h, operation)).toMatchObject({ status: 'completed' });
    expect(await h.sql`SELECT key FROM node_keys WHERE node_id = ${vm.id}`).toEqual([]);
  });

  it('takes the tags of VMs and hosts, an operator’s labels', async () => {
    const tagged = await h.api.nodes.updateTags({ name: 'lc-3', patch: { rack: 'r1' } });
    expect(tagged.tags).toEqual({ rack: 'r1' });
    expect((await h.api.hosts.get({ name: 'lc-3' })).tags).toEqual({ rack: 'r1' });
  });

  it('is refused by the database too, whatever code runs', async () => {
    const vm = await createVm('owned-2', 'lc-1');
    const before = await snapshot(vm.id);
    // A transaction the generic functions marked changes no lifecycle node, nor its keys.
    for (const write of [
      (tx: Parameters<typeof markGeneric>[0]) => tx`DELETE FROM nodes WHERE id = ${vm.id}`,
      (tx: Parameters<typeof markGeneric>[0]) =>
        tx`UPDATE nodes SET metadata = '{"state":"stopped"}' WHERE id = ${vm.id}`,
      (tx: Parameters<typeof markGeneric>[0]) => tx`DELETE FROM node_keys WHERE node_id = ${vm.id}`,
    ]) {
      await expect(
        withActor(h.sql, { actor: 'api', operation: null }, async (tx) => {
          await markGeneric(tx);
          await write(tx);
        }),
      ).rejects.toMatchObject({ code: 'VG004' });
    }
    // Whoever writes: a VM keeps its name, hangs under nothing but a host, and is no parent.
    await expect(h.sql`UPDATE nodes SET name = 'other' WHERE id = ${vm.id}`).rejects.toMatchObject({
      code: 'VG004',
    });
    await expect(
      h.sql`INSERT INTO nodes (name, type, parent_id) VALUES ('under-vm', 'disk', ${vm.id})`,
    ).rejects.toMatchObject({ code: 'VG004' });
    const [rack] = await h.sql<{ id: string }[]>`
      INSERT INTO nodes (name, type) VALUES ('db-rack', 'rack') RETURNING id`;
    await expect(
      h.sql`UPDATE nodes SET parent_id = ${rack!.id} WHERE id = ${vm.id}`,
    ).rejects.toMatchObject({ code: 'VG004' });
    expect(await snapshot(vm.id)).toEqual(before);
  });
});

describe('a move whose target enters maintenance on the way', () => {
  it('is committed: the hold was a promise, the VM is on one host, no hold is left', async () => {
    await createVm('move-1', 'lc-1');
    // The target enters maintenance in the very transaction the hold's room is claimed in:
    // after the claim passed its checks, before anything else of the move.
    await h.sql.unsafe(`
      CREATE FUNCTION test_maintenance_on_hold() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF EXISTS (SELECT 1 FROM nodes WHERE id = NEW.vm_id AND type = 'vm-migration') THEN
          UPDATE host_capacity SET state = 'maintenance' WHERE host_id = NEW.host_id;
        END IF;
        RETURN NULL;
      END $$;
      CREATE TRIGGER test_maintenance_on_hold AFTER INSERT ON allocations
        FOR EACH ROW EXECUTE FUNCTION test_maintenance_on_hold();`);
    try {
      const { operation } = await h.api.vms.migrate({ name: 'move-1', host: 'lc-2' });
      const outcome = await settle(h, operation);
      expect(outcome).toMatchObject({ status: 'completed', error: null });
    } finally {
      await h.sql.unsafe(`DROP TRIGGER test_maintenance_on_hold ON allocations`);
    }
    expect((await h.api.hosts.get({ name: 'lc-2' })).state).toBe('maintenance');
    expect(await h.api.vms.get({ name: 'move-1' })).toMatchObject({
      state: 'running',
      host: 'lc-2',
    });
    expect((await placements()).find((p) => p.name === 'move-1')).toEqual({
      name: 'move-1',
      parent: 'lc-2',
      room: ['lc-2'],
    });
    expect((await h.api.nodes.list({ type: 'vm-migration' })).items).toEqual([]);
    const status = await h.worker.drivers.get(await h.api.hosts.get({ name: 'lc-1' })).status();
    expect(status.domains.map((d) => d.name)).not.toContain('move-1');
    await h.api.hosts.activate({ name: 'lc-2' });
  });

  it('commits in the registry whatever the target’s state since the hold', async () => {
    const vm = await createVm('move-2', 'lc-1');
    for (const state of ['maintenance', 'down'] as const) {
      const from = (await getVm(h.sql, 'move-2')).host!;
      const to = from === 'lc-1' ? 'lc-3' : 'lc-1';
      await reserveMigrationTarget(h.sql, vm, from, to, 'spread');
      const held = (await h.api.hosts.get({ name: to })).allocated.memoryMiB;
      const left = (await h.api.hosts.get({ name: from })).allocated.memoryMiB;
      await h.sql`
        UPDATE host_capacity SET state = ${state}
        WHERE host_id = (SELECT id FROM nodes WHERE name = ${to})`;
      expect(await commitMigration(h.sql, vm)).toBe(to);
      expect((await placements()).find((p) => p.name === 'move-2')).toMatchObject({
        parent: to,
        room: [to],
      });
      // The hold's room became the VM's: the target's figures did not move.
      expect((await h.api.hosts.get({ name: to })).allocated.memoryMiB).toBe(held);
      expect((await h.api.hosts.get({ name: from })).allocated.memoryMiB).toBe(left - 1024);
      await h.sql`
        UPDATE host_capacity SET state = 'active'
        WHERE host_id = (SELECT id FROM nodes WHERE name = ${to})`;
    }
    expect((await h.api.nodes.list({ type: 'vm-migration' })).items).toEqual([]);
  });
});
