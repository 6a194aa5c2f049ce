import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeProber } from '../../services/probe.ts';

/**
 * Health checks send packets only where the operator's ranges admit, follow no redirect, and
 * tell nothing of what the instance answered but whether it passed. Every address here is on
 * loopback; the ranges admit 127.0.0.0/8 only.
 */
describe('health checks', () => {
  const probe = makeProber({ cidrs: ['127.0.0.0/8'], timeoutMs: 1_000 });
  let server: http.Server;
  let port: number;
  let hits: string[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      hits.push(req.url!);
      if (req.url === '/moved') res.writeHead(302, { location: 'http://10.0.0.1/' }).end();
      else if (req.url === '/sick') res.writeHead(503).end('secret stack trace');
      else res.writeHead(200).end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise((r) => server.close(r)));

  it('passes a listening port and a 2xx or 3xx answer, without following a redirect', async () => {
    hits = [];
    expect(await probe({ tcp: port }, '127.0.0.1')).toEqual({ ok: true });
    expect(await probe({ http: { port, path: '/healthz' } }, '127.0.0.1')).toEqual({ ok: true });
    expect(await probe({ http: { port, path: '/moved' } }, '127.0.0.1')).toEqual({ ok: true });
    expect(hits).toEqual(['/healthz', '/moved']);
  });

  it('fails a refused port and an error answer, saying how but not what was answered', async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const free = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    expect(await probe({ tcp: free }, '127.0.0.1')).toEqual({
      ok: false,
      why: `tcp ${free}: ECONNREFUSED`,
    });
    const sick = await probe({ http: { port, path: '/sick' } }, '127.0.0.1');
    expect(sick).toEqual({ ok: false, why: `http ${port}: answered 503` });
    expect(JSON.stringify(sick)).not.toContain('secret');
  });

  it('sends nothing outside the admitted ranges, nor to a name, nor with no ranges at all', async () => {
    for (const address of ['10.0.0.1', '192.168.1.1', '::1', '::ffff:10.0.0.1', 'localhost', '']) {
      const result = await probe({ tcp: 80 }, address);
      expect(result).toMatchObject({ ok: false, unprobeable: true });
    }
    const none = makeProber({ cidrs: [], timeoutMs: 1_000 });
    expect(await none({ tcp: port }, '127.0.0.1')).toMatchObject({ ok: false, unprobeable: true });
    // A v4-mapped loopback address is loopback: admitted like 127.0.0.1.
    expect(await probe({ tcp: port }, '::ffff:127.0.0.1')).toEqual({ ok: true });
  });
});
