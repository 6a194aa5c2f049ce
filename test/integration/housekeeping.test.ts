import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { seedHosts } from '../../bench/support.ts';
import { placeVm } from '../../registry/allocate.ts';
import { claimVm } from '../../registry/claim-vm.ts';
import { createNetwork } from '../../registry/networks.ts';
import { createTestDatabase } from '../support/harness.ts';

// A registry whose statistics were taken when it held only hosts (the state right after a bulk
// registration), then a burst of placements with no autovacuum in between (this machine's
// server runs with it off; on others a burst outruns it).
let db: Awaited<ReturnType<typeof createTestDatabase>>;
beforeAll(async () => {
  db = await createTestDatabase();
  await seedHosts(db.sql, 20, { cpus: 64, memoryMiB: 256 * 1024, cpuRatio: 4 });
  await createNetwork(db.sql, { name: 'pool', cidr: '10.64.0.0/16' });
  await db.sql`ANALYZE`;
});
afterAll(async () => {
  await db?.drop();
});

const operation = { kind: 'create', workflowId: 'housekeeping', runId: 'housekeeping' };

async function place(i: number) {
  const request = {
    name: `hk-${i}`,
    vcpus: 1,
    memoryMiB: 256,
    diskGiB: 0,
    nics: [{ network: 'pool' }],
    tags: {},
    placement: {},
  };
  await placeVm(db.sql, await claimVm(db.sql, request, operation), 'spread');
}

/** How PostgreSQL would find one VM by id: the statement every step's state change runs. */
async function vmByIdPlan(): Promise<string> {
  const [vm] = await db.sql<{ id: string }[]>`SELECT id FROM nodes WHERE name = 'hk-0'`;
  const rows = await db.sql<{ 'QUERY PLAN': string }[]>`
    EXPLAIN UPDATE nodes SET updated_at = now() WHERE id = ${vm!.id} AND type = 'vm'`;
  return rows.map((r) => r['QUERY PLAN']).join('\n');
}

describe('registry housekeeping', () => {
  it('refreshes statistics after a burst, so a VM is found by its id, not by scanning every VM', async () => {
    for (let i = 0; i < 990; i++) await place(i);
    // Precondition: statistics that say VMs are rare make the planner walk the type index.
    expect(await vmByIdPlan()).toContain('nodes_type_idx');

    for (let i = 990; i < 1000; i++) await place(i);
    await vi.waitFor(
      async () => {
        const [s] = await db.sql<{ n: number }[]>`
          SELECT count(*)::int AS n FROM pg_stats
          WHERE tablename = 'nodes' AND attname = 'type' AND 'vm' = ANY (most_common_vals::text::text[])`;
        expect(s!.n).toBe(1);
      },
      { timeout: 20_000, interval: 200 },
    );
    const plan = await vmByIdPlan();
    expect(plan).toContain('nodes_pkey');
    expect(plan).not.toContain('nodes_type_idx');

    // And host_capacity holds no more dead row versions than a round of placements leaves.
    const [cap] = await db.sql<{ pages: number }[]>`
      SELECT relpages AS pages FROM pg_class WHERE relname = 'host_capacity'`;
    expect(cap!.pages).toBeLessThan(20);
  });
});
