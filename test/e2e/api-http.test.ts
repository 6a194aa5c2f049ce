import { TRPCClientError } from '@trpc/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiClient, errorCode, waitForOperation, type ApiClient } from '../support/api-client.ts';
import { startHarness, UI_URL, type Harness } from '../support/harness.ts';

let h: Harness;
let api: ApiClient;

beforeAll(async () => {
  h = await startHarness({ http: true });
  api = apiClient(h.apiUrl, h.token);
});
afterAll(async () => {
  await h?.close();
});

describe('the HTTP API, as a cloud layer uses it', () => {
  it('registers a host, runs a VM on it, and decommissions it', async () => {
    const uri = await h.simulatedHost('rack1-hv1', { cpus: 4, memoryMiB: 4096 });
    const host = await api.hosts.register.mutate({ name: 'rack1-hv1', driver: 'libvirt', uri });
    expect(host.capacity).toEqual({ vcpus: 4, memoryMiB: 4096, diskGiB: 0 });

    const created = await api.vms.create.mutate({
      name: 'db-1',
      vcpus: 2,
      memoryMiB: 2048,
      nics: [{ network: 'default', ip: '10.200.0.10', mac: '52:54:00:12:34:56' }],
      tags: { role: 'db' },
    });
    expect(created.operation.url).toBe(
      `${UI_URL}/namespaces/${h.namespace}/workflows/vm%3Adb-1/${created.operation.runId}/history`,
    );
    expect(await waitForOperation(api, created.operation)).toMatchObject({
      status: 'completed',
      error: null,
    });

    const vm = await api.vms.get.query({ name: 'db-1' });
    expect(vm).toMatchObject({ state: 'running', host: 'rack1-hv1', tags: { role: 'db' } });
    expect(vm.keys).toEqual(['ip:10.200.0.10', 'mac:52:54:00:12:34:56']);
    expect((await api.hosts.get.query({ name: 'rack1-hv1' })).allocated).toEqual({
      vcpus: 2,
      memoryMiB: 2048,
      diskGiB: 0,
    });
    const domains = (await h.worker.drivers.get(host).status()).domains;
    expect(domains).toEqual([
      {
        name: 'db-1',
        state: 'running',
        vagothId: vm.id,
        vcpus: 2,
        memoryMiB: 2048,
        macs: ['52:54:00:12:34:56'],
      },
    ]);

    // The same IP again: CONFLICT naming the key and its holder, in a shape any client can read.
    const conflict = await api.vms.create
      .mutate({
        name: 'db-2',
        vcpus: 1,
        memoryMiB: 256,
        nics: [{ network: 'default', ip: '10.200.0.10' }],
      })
      .catch((e: unknown) => e);
    expect(conflict).toBeInstanceOf(TRPCClientError);
    expect(errorCode(conflict)).toBe('CONFLICT');
    expect((conflict as TRPCClientError<never>).data).toMatchObject({
      httpStatus: 409,
      vagoth: { type: 'KeyConflict', details: { key: 'ip:10.200.0.10', holder: 'vm db-1' } },
    });

    const { operation } = await api.vms.decommission.mutate({ name: 'db-1' });
    expect(await waitForOperation(api, operation)).toMatchObject({
      status: 'completed',
      kind: 'decommission',
    });
    expect(errorCode(await api.vms.get.query({ name: 'db-1' }).catch((e: unknown) => e))).toBe(
      'NOT_FOUND',
    );
    expect((await h.worker.drivers.get(host).status()).domains).toEqual([]);
    expect((await api.hosts.get.query({ name: 'rack1-hv1' })).allocated).toEqual({
      vcpus: 0,
      memoryMiB: 0,
      diskGiB: 0,
    });
  });

  it('answers bad input with 400 and the field that was wrong', async () => {
    const err = await api.vms.create
      .mutate({ name: 'x', vcpus: 1, memoryMiB: -5 })
      .catch((e: unknown) => e);
    expect(errorCode(err)).toBe('BAD_REQUEST');
    expect((err as TRPCClientError<never>).message).toContain('memoryMiB');
    expect((err as TRPCClientError<never>).data).toMatchObject({
      zodError: { fieldErrors: { memoryMiB: [expect.any(String)] } },
    });
  });

  it('reports an unknown operation as NOT_FOUND', async () => {
    const err = await api.operations.get.query({ id: 'vm:nothing' }).catch((e: unknown) => e);
    expect(errorCode(err)).toBe('NOT_FOUND');
  });
});
