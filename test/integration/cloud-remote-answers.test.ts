import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode } from '../support/api-client.ts';
import { cloudClient, type CloudClient } from '../support/cloud-client.ts';
import { startHarness, type Harness } from '../support/harness.ts';

/** How the impostor answers hosts.list. */
type Mode =
  | 'valid'
  | 'huge-declared'
  | 'huge-streamed'
  | 'wrong-shape'
  | 'redirect'
  | 'hang'
  | 'not-json'
  | 'hostile-error'
  | 'refuses-token';

const host = {
  state: 'active',
  vms: 0,
  capacity: { vcpus: 4, memoryMiB: 4096, diskGiB: 100 },
  ratios: { cpu: 1, memory: 1 },
  free: { vcpus: 4, memoryMiB: 4096, diskGiB: 100 },
};

function tRPCError(res: ServerResponse, status: number, code: string, message: string) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: { message, code: -32000, data: { code, httpStatus: status } } }));
}

/**
 * Another "cluster" on 127.0.0.1 that answers the cloud as a broken or hostile one would: the
 * cloud must refuse each answer as not the cluster's API (BAD_GATEWAY), within its time, with
 * nothing recorded and none of the impostor's words passed on unbounded.
 */
describe('what the cloud takes from a remote cluster’s answers', () => {
  let h: Harness;
  let admin: CloudClient;
  let impostor: Server;
  let url: string;
  let mode: Mode = 'valid';

  beforeAll(async () => {
    impostor = createServer((req, res) => {
      if (mode === 'hang') return; // never answers
      if (mode === 'redirect') {
        res.writeHead(302, { location: 'http://127.0.0.1:9/steal' }).end();
        return;
      }
      if (mode === 'refuses-token') return tRPCError(res, 401, 'UNAUTHORIZED', 'no');
      if (mode === 'hostile-error') {
        return tRPCError(res, 404, 'NOT_FOUND', `\u001b[31mpwned\u0007 ${'x'.repeat(10_000)}`);
      }
      if (mode === 'not-json') {
        res.writeHead(200, { 'content-type': 'application/json' }).end('<html>');
        return;
      }
      if (mode === 'huge-declared') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': 1e9 });
        res.write('{"result":{"data":[');
        return; // and never the rest
      }
      if (mode === 'huge-streamed') {
        res.writeHead(200, { 'content-type': 'application/json' });
        const chunk = JSON.stringify(host) + ',';
        res.write('{"result":{"data":[');
        // 32 MiB of hosts, past what the cloud reads.
        const block = chunk.repeat(Math.ceil(65_536 / chunk.length));
        let sent = 0;
        const more = () => {
          while (sent < 32 * 1024 * 1024) {
            sent += block.length;
            if (!res.write(block)) return void res.once('drain', more);
          }
          res.end(`${JSON.stringify(host)}]}}`);
        };
        res.on('error', () => {});
        more();
        return;
      }
      const data = mode === 'wrong-shape' ? [{ ...host, vms: -1 }] : [host];
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ result: { data } }));
    });
    await new Promise<void>((r) => impostor.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(impostor.address() as AddressInfo).port}/trpc`;
    h = await startHarness({ cloud: { clusterUrls: [url], clusterTimeoutMs: 1_500 } });
    admin = cloudClient(h.cloud!.url, h.cloud!.adminToken);
  });

  afterAll(async () => {
    await h?.close();
    impostor?.closeAllConnections();
    await new Promise((r) => impostor?.close(r));
  });

  const register = (name: string) =>
    admin.clusters.register
      .mutate({ name, driver: 'vagoth', url, token: `vgt_${'a'.repeat(43)}` })
      .then(
        (c) => ({ code: 'ok', message: '', capacity: c.capacity }),
        (err: unknown) => ({
          code: errorCode(err) ?? String(err),
          message: (err as Error).message,
          capacity: null,
        }),
      );

  it('refuses every answer that is not the cluster’s API, within its time, recording nothing', async () => {
    const cases: Array<[Mode, string]> = [
      ['huge-declared', 'did not answer'],
      ['huge-streamed', 'did not answer'],
      ['wrong-shape', 'something other than its API'],
      ['redirect', 'did not answer'],
      ['hang', 'did not answer'],
      ['not-json', 'did not answer'],
      ['refuses-token', "refused the cloud's token"],
    ];
    for (const [m, says] of cases) {
      mode = m;
      const started = Date.now();
      const r = await register(`imp-${m}`);
      expect(r, m).toMatchObject({ code: 'BAD_GATEWAY' });
      expect(r.message, m).toContain(says);
      expect(Date.now() - started, m).toBeLessThan(5_000);
    }
    expect((await admin.clusters.list.query()).map((c) => c.name)).toEqual(['local']);
  });

  it('passes on a cluster’s own refusal only bounded and printable, as the cluster’s', async () => {
    mode = 'hostile-error';
    const r = await register('imp-hostile');
    expect(r.code).toBe('NOT_FOUND');
    expect(r.message.startsWith('cluster imp-hostile: ')).toBe(true);
    // eslint-disable-next-line no-control-regex
    expect(r.message).not.toMatch(/[\u0000-\u001f\u007f]/);
    expect(r.message.length).toBeLessThan(400);
  });

  it('takes a well-formed cluster, and only its numbers', async () => {
    mode = 'valid';
    const r = await register('imp-ok');
    expect(r).toMatchObject({ code: 'ok', capacity: { hosts: 1, free: { memoryMiB: 4096 } } });
  });
});
