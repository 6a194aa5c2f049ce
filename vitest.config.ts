import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts'],
          globalSetup: ['test/support/global-setup.ts'],
          // Workers embed Temporal's native core: separate processes, not threads.
          pool: 'forks',
          // The request-limits test measures the heap from a collected start.
          execArgv: ['--expose-gc'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          // Real guests booted by qemu under software emulation: seconds per boot, not millis.
          name: 'realvm',
          include: ['test/realvm/**/*.test.ts'],
          // The database and Temporal too, for a guest made through the API.
          globalSetup: ['test/support/global-setup.ts', 'test/realvm/global-setup.ts'],
          pool: 'forks',
          // One qemu at a time, after the other tiers: a guest under emulation keeps a core busy,
          // and their timeouts are not sized for that.
          fileParallelism: false,
          sequence: { groupOrder: 1 },
          testTimeout: 300_000,
          hookTimeout: 300_000,
        },
      },
      {
        // Committed histories replayed against today's workflow code: a non-deterministic change fails.
        test: {
          name: 'replay',
          include: ['test/replay/**/*.test.ts'],
          pool: 'forks',
          testTimeout: 120_000,
        },
      },
      {
        test: {
          // Killed workers, restarted servers, faulty hypervisors: minutes each, one file at a
          // time after the integration tier (they start daemons and servers of their own).
          name: 'chaos',
          include: ['test/chaos/**/*.test.ts'],
          globalSetup: ['test/support/global-setup.ts'],
          pool: 'forks',
          fileParallelism: false,
          sequence: { groupOrder: 1 },
          testTimeout: 600_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
