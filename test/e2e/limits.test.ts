import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_LIMITS, startHarness, type Harness } from '../support/harness.ts';
import { rawCall, withToken } from '../support/raw-call.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ http: true });
});
afterAll(async () => {
  await h?.close();
});

/**
 * POSTs `bytes` of a JSON array to vms.create, streamed from one 64 KiB chunk so the client
 * holds no copy; with `declared`, the length is sent up front, else the body is chunked.
 * Answers the status and body the server sent, however early it answered.
 */
function bigPost(bytes: number, declared: boolean): Promise<{ status: number; body: string }> {
  const chunk = Buffer.alloc(64 * 1024, '1,');
  return new Promise((resolve, reject) => {
    const req = request(`${h.apiUrl}/vms.create`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...withToken(h.token),
        ...(declared ? { 'content-length': String(bytes) } : {}),
      },
    });
    // Answered once the response has ended and the request is closed: what the client queued
    // to send is let go, so only the server's memory is left to measure.
    const closed = new Promise((done) => req.once('close', done));
    let answered = false;
    req.on('response', (res) => {
      answered = true;
      let body = '';
      const answer = () => void closed.then(() => resolve({ status: res.statusCode ?? 0, body }));
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', answer);
      res.on('error', answer);
    });
    // The server may close the connection as soon as it has answered: later writes fail.
    req.on('error', (err) => (req.writableEnded || answered ? undefined : reject(err)));
    let sent = 0;
    const pump = () => {
      while (sent < bytes && !req.destroyed) {
        const n = Math.min(chunk.length, bytes - sent);
        sent += n;
        if (!req.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
          req.once('drain', pump);
          return;
        }
      }
      if (!req.destroyed) req.end();
    };
    req.write('[');
    pump();
  });
}

const MiB = 1024 * 1024;

describe('request limits', () => {
  it('refuses 5 MB and 50 MB bodies with 413, declared or chunked, without buffering them', async () => {
    // The API runs in this process, which the tier starts with --expose-gc.
    const used = () => {
      const m = process.memoryUsage();
      return m.heapUsed + m.arrayBuffers;
    };
    global.gc!();
    const before = used();
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, used())), 5);
    const answers = await Promise.all([
      bigPost(5 * MiB, true),
      bigPost(50 * MiB, true),
      bigPost(5 * MiB, false),
      bigPost(50 * MiB, false),
      ...Array.from({ length: 4 }, () => bigPost(50 * MiB, true)),
    ]).finally(() => clearInterval(sampler));
    for (const a of answers) {
      expect(a.status).toBe(413);
      expect(a.body).toContain('PAYLOAD_TOO_LARGE');
    }
    global.gc!();
    const after = used();
    console.log(
      `request limits: peak +${((peak - before) / MiB).toFixed(1)} MiB, kept +${((after - before) / MiB).toFixed(1)} MiB`,
    );
    // Eight refused bodies of up to 50 MB: none was ever held whole, and nothing of them is kept.
    expect((peak - before) / MiB).toBeLessThan(40);
    expect((after - before) / MiB).toBeLessThan(8);
    // A body just under the limit is read and answered for what it holds.
    const near = await rawCall(
      h.apiUrl,
      'vms.create',
      'mutation',
      JSON.stringify({ name: 'x'.repeat(MiB - 200), vcpus: 1, memoryMiB: 64 }),
      withToken(h.token),
    );
    expect(near.status).toBe(400);
    expect(near.text).toContain('name: must be');
  }, 120_000);

  it('answers other callers while big bodies are being refused', async () => {
    const big = Promise.all(Array.from({ length: 8 }, () => bigPost(50 * MiB, false)));
    const t0 = performance.now();
    const small = await rawCall(h.apiUrl, 'vms.list', 'query', {}, withToken(h.token));
    const ms = performance.now() - t0;
    expect(small.status).toBe(200);
    console.log(`vms.list answered in ${ms.toFixed(0)} ms beside eight 50 MB bodies`);
    for (const a of await big) expect(a.status).toBe(413);
  }, 120_000);

  it(`takes at most ${API_LIMITS.maxBatchSize} calls in a batch`, async () => {
    const batch = (n: number) => {
      const paths = Array.from({ length: n }, () => 'vms.list').join(',');
      const input = encodeURIComponent(
        JSON.stringify(Object.fromEntries(Array.from({ length: n }, (_, i) => [i, {}]))),
      );
      return fetch(`${h.apiUrl}/${paths}?batch=1&input=${input}`, {
        headers: withToken(h.token),
      });
    };
    expect((await batch(API_LIMITS.maxBatchSize)).status).toBe(200);
    const over = await batch(API_LIMITS.maxBatchSize + 1);
    expect(over.status).toBe(400);
    const many = await batch(1000);
    expect([400, 414, 431]).toContain(many.status);
  });

  it('refuses input nested deeper than any procedure takes, naming the input', async () => {
    const deep = (n: number) =>
      `{"name":"deep","type":"thing","definition":${'{"a":'.repeat(n)}1${'}'.repeat(n)}}`;
    for (const n of [40, 100_000]) {
      const t0 = performance.now();
      const answer = await rawCall(
        h.apiUrl,
        'nodes.create',
        'mutation',
        deep(n),
        withToken(h.token),
      );
      expect(performance.now() - t0).toBeLessThan(1_000);
      expect(answer.status).toBe(400);
      expect(answer.text).toContain('nested deeper than');
    }
    const arrays = `[${'['.repeat(200_000)}${']'.repeat(200_000)}]`;
    const answer = await rawCall(h.apiUrl, 'nodes.create', 'mutation', arrays, withToken(h.token));
    expect(answer.status).toBe(400);
    // Nesting within the bound is still taken.
    const ok = await rawCall(h.apiUrl, 'nodes.create', 'mutation', deep(8), withToken(h.token));
    expect(ok.status).toBe(200);
  });
});
