// bench/images: an image import (images/store.ts: streamed from a URL, hashed, written,
// synced, read by qemu-img) against `curl -o` of the same file from the same server, side by
// side in one process; then what the image costs on a host (bench/image-hosts.ts): its first
// copy there against `cp`, and a create from it against a create with a blank disk.
//
//   npm run bench:images -- [--mib 1024] [--rounds 3]
//
// The server is Python's http.server on 127.0.0.1, a process of its own, serving a file of
// random bytes (a raw image: no holes, nothing to skip); both downloads land on the same disk
// and are synced. Rounds alternate the order. Prints each throughput, their ratio (import /
// curl) and the CPU the import took in this process per GiB, never an assertion.
import { execFile, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ImageStore } from '../images/store.ts';
import { benchImageHosts } from './image-hosts.ts';
import { median, sizeAndRounds } from './support.ts';

const run = promisify(execFile);
const MiB = 1024 ** 2;
const { size, rounds } = sizeAndRounds();

async function fill(file: string) {
  const handle = await open(file, 'w');
  try {
    for (let o = 0; o < size; o += 8 * MiB) await handle.write(randomBytes(8 * MiB), 0, 8 * MiB, o);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function serve(dir: string): Promise<{ url: string; stop: () => void }> {
  const server = spawn('python3', ['-m', 'http.server', '--bind', '127.0.0.1', '0'], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.once('exit', () => reject(new Error('http.server exited')));
    server.stdout.on('data', (chunk: Buffer) => {
      const m = /port (\d+)/.exec(chunk.toString());
      if (m) resolve(Number(m[1]));
    });
  });
  return { url: `http://127.0.0.1:${port}/`, stop: () => server.kill() };
}

async function main() {
  const dir = await mkdtemp(path.join(tmpdir(), 'vagoth-bench-images-'));
  const served = path.join(dir, 'served');
  await run('mkdir', [served]);
  const file = path.join(served, 'disk.raw');
  await fill(file);
  const server = await serve(served);
  const store = new ImageStore(path.join(dir, 'store'));
  const source = { kind: 'url' as const, url: new URL('disk.raw', server.url) };
  const policy = { dirs: [], urls: [server.url] };
  const times = { import: [] as number[], curl: [] as number[] };
  const cpu: number[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? ['import', 'curl'] : ['curl', 'import'];
      for (const which of order) {
        if (which === 'curl') {
          const out = path.join(dir, 'curl.raw');
          const t0 = performance.now();
          await run('curl', ['-sS', '-o', out, source.url.href]);
          await run('sync', ['--file-system', out]);
          times.curl.push(performance.now() - t0);
          await rm(out);
          continue;
        }
        const id = randomUUID();
        const cpu0 = process.cpuUsage();
        const t0 = performance.now();
        await store.import(id, {
          source,
          policy,
          asked: { format: 'raw', sha256: null },
          maxBytes: size,
        });
        times.import.push(performance.now() - t0);
        const used = process.cpuUsage(cpu0);
        cpu.push((used.user + used.system) / 1e6);
        await store.remove(id);
      }
    }
  } finally {
    server.stop();
  }
  try {
    report(times, cpu);
    await benchImageHosts(file, size, rounds);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function report(times: { import: number[]; curl: number[] }, cpu: number[]) {
  const mibs = (ms: number) => size / MiB / (ms / 1000);
  const curl = mibs(median(times.curl));
  const imported = mibs(median(times.import));
  console.log(`image of ${size / MiB} MiB from http.server on 127.0.0.1, median of ${rounds}`);
  console.log(`  curl -o (synced):                        ${curl.toFixed(0)} MiB/s`);
  console.log(
    `  import (hash, write, sync, qemu-img):    ${imported.toFixed(0)} MiB/s  ratio ${(imported / curl).toFixed(2)}x of curl` +
      `  (${(median(cpu) / (size / 1024 ** 3)).toFixed(2)} CPU s/GiB in this process)`,
  );
}

await main();
