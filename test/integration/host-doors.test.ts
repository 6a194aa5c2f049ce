import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createContextInner } from '../../api/context.ts';
import { createCaller } from '../../api/router.ts';
import { STAND_IN_AGENT, writeGeatsHost } from '../contract/geats-host.ts';
import { startHarness, type Harness } from '../support/harness.ts';
import { TEST_HOST_URIS } from '../support/host-uris.ts';

// Issue 14: hosts.register runs no program and opens no file a caller names, and a
// hypervisor is registered once. Everything here goes through the HTTP API, as a caller's
// request would, and every answer is read whole for what it must not carry.

let h: Harness;
let root: string;
/** The only place local geats agents may be run from, in this file. */
let agents: string;
/** Written by an agent that ran: it must never appear for a refused one. */
let marker: string;
/** An agent outside the allow-list that would leave the marker. */
let outsider: string;

/** Values of the worker's environment an agent must not see, nor a caller. */
const CANARY = 'vagoth-doors-canary-7f3a';

async function script(file: string, body: string): Promise<string> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `#!/bin/sh\n${body}\n`);
  await chmod(file, 0o755);
  return file;
}

/** A geats host whose agent first records its environment, then answers as the stand-in. */
async function geatsHost(name: string): Promise<{ dir: string; agent: string }> {
  const { dir, agent } = await writeGeatsHost(agents, name, { memoryMiB: 4096 });
  await script(
    agent,
    `env > '${dir}/env.txt'\nexec '${process.execPath}' '${STAND_IN_AGENT}' '${dir}'`,
  );
  return { dir, agent };
}

interface Answer {
  status: number;
  text: string;
  body: {
    result?: { data: unknown };
    error?: { message: string; data: { code: string; zodError: unknown; vagoth: unknown } };
  };
}

async function register(input: Record<string, unknown>): Promise<Answer> {
  const res = await fetch(`${h.apiUrl}/hosts.register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${h.token}` },
    body: JSON.stringify({ vcpus: input.driver === 'geats' ? 2 : undefined, ...input }),
  });
  const text = await res.text();
  return { status: res.status, text, body: JSON.parse(text) as Answer['body'] };
}

/** Refused as a bad `uri`, and the answer holds nothing a program printed or a file held. */
function expectRefusedUri(answer: Answer, fieldError = true): void {
  expect(answer.body.error?.data.code).toBe('BAD_REQUEST');
  expect(answer.body.error?.message).toMatch(/uri/);
  if (fieldError) {
    expect(answer.body.error?.data.zodError).toMatchObject({
      fieldErrors: { uri: expect.any(Array) },
    });
  }
  expectNoLeak(answer.text);
}

function expectNoLeak(text: string): void {
  for (const leak of ['uid=', 'root:', 'gid=', CANARY, 'PATH=', 'DATABASE_URL', 'postgres://']) {
    expect(text).not.toContain(leak);
  }
}

beforeAll(async () => {
  process.env.VAGOTH_DOORS_CANARY = CANARY;
  root = await mkdtemp(path.join(tmpdir(), 'vagoth-doors-'));
  agents = path.join(root, 'agents');
  await mkdir(agents);
  marker = path.join(root, 'ran');
  outsider = await script(
    path.join(root, 'outside', 'geats-agent'),
    `touch '${marker}'\nid\nenv\nexit 1`,
  );
  h = await startHarness({ http: true, hostUris: { ...TEST_HOST_URIS, geatsAgents: [agents] } });
});

afterAll(async () => {
  await h?.close();
  await rm(root, { recursive: true, force: true });
  delete process.env.VAGOTH_DOORS_CANARY;
});

describe('hosts.register runs no program and opens no file a caller names', () => {
  it.each([
    ['a program as a geats agent', { driver: 'geats', uri: 'geats:///usr/bin/id' }],
    ['env as a geats agent', { driver: 'geats', uri: 'geats:///usr/bin/env' }],
    ['an agent outside the allow-list', { driver: 'geats', uri: 'geats:///OUTSIDER' }],
    ['a file as a simulated host', { driver: 'libvirt', uri: 'test:///etc/passwd' }],
    ['the ext transport', { driver: 'libvirt', uri: 'qemu+ext:///system?command=/bin/sh' }],
    ['netcat=', { driver: 'libvirt', uri: 'qemu+ssh://h/system?netcat=/bin/sh' }],
    ['command= after ;', { driver: 'libvirt', uri: 'qemu+ssh://h/system?mode=auto;command=/x' }],
    ['no_verify=', { driver: 'libvirt', uri: 'qemu+tls://h/system?no_verify=1' }],
    ['keyfile=', { driver: 'libvirt', uri: 'qemu+ssh://h/system?keyfile=/etc/shadow' }],
    [
      'a socket outside the allowed dirs',
      { driver: 'libvirt', uri: 'qemu+unix:///system?socket=/etc/passwd' },
    ],
    [
      'a daemon reading a file',
      { driver: 'libvirt', uri: 'test+unix:///etc/passwd?socket=/tmp/s' },
    ],
  ])('refuses %s, at once, naming uri', async (_, host) => {
    const uri = host.uri.replace('/OUTSIDER', outsider);
    const answer = await register({ name: 'door', ...host, uri });
    expectRefusedUri(answer);
    expect(existsSync(marker)).toBe(false);
    expect(answer.text).not.toContain('x:0:0');
  });

  it('refuses simulated hosts where they are not enabled', async () => {
    const uri = await h.simulatedHost('not-here');
    const closed = createCaller(
      createContextInner(
        { ...h.deps, hostUris: { ...TEST_HOST_URIS, simulatedHosts: false } },
        bearer(h.token),
      ),
    );
    await expect(
      closed.hosts.register({ name: 'not-here', driver: 'libvirt', uri }),
    ).rejects.toMatchObject({ code: 'BAD_REQUEST', message: expect.stringMatching(/^uri: /) });
    await expect(h.api.hosts.get({ name: 'not-here' })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
  });

  it('refuses, in the worker, an agent that a symlink leads out of the allow-list', async () => {
    const link = path.join(agents, 'escape');
    await symlink(outsider, link);
    const answer = await register({ name: 'escape', driver: 'geats', uri: `geats://${link}` });
    // The API sees an allowed path; the worker resolves it before running anything.
    expectRefusedUri(answer, false);
    expect(answer.body.error?.message).toContain('VAGOTH_GEATS_AGENTS');
    expect(existsSync(marker)).toBe(false);
  });

  it('refuses, in the worker, a simulated host that a symlink leads out of the allowed dirs', async () => {
    const link = path.join(root, 'passwd.xml');
    await symlink('/etc/passwd', link);
    const answer = await register({ name: 'passwd', driver: 'libvirt', uri: `test://${link}` });
    expectRefusedUri(answer, false);
  });

  it('says only that libvirt could not open a file it could not read, never its content', async () => {
    const file = path.join(root, 'not-a-host.xml');
    await writeFile(file, 'root:x:0:0:root:/root:/bin/bash\n');
    const answer = await register({ name: 'junk', driver: 'libvirt', uri: `test://${file}` });
    expect(answer.body.error?.message).toMatch(
      /libvirt could not open the connection \(code \d+\)/,
    );
    expectNoLeak(answer.text);
  });

  it('reports an agent that fails in vagoth’s words, not in what it printed', async () => {
    const agent = await script(
      path.join(agents, 'crash', 'geats-agent'),
      `echo "root:x:0:0 $VAGOTH_DOORS_CANARY" >&2\necho uid=0 \nexit 3`,
    );
    const answer = await register({ name: 'crash', driver: 'geats', uri: `geats://${agent}` });
    expect(answer.body.error?.message).toContain('geats agent exited with status 3');
    expectNoLeak(answer.text);
    const garbage = await script(path.join(agents, 'garbage', 'geats-agent'), 'id; exit 0');
    const bad = await register({ name: 'garbage', driver: 'geats', uri: `geats://${garbage}` });
    expect(bad.body.error?.message).toContain('not a geats answer');
    expectNoLeak(bad.text);
  });

  it('runs an allowed agent with a minimal environment, none of the worker’s', async () => {
    const { dir, agent } = await geatsHost('clean');
    const answer = await register({ name: 'clean', driver: 'geats', uri: `geats://${agent}` });
    expect(answer.body.result?.data).toMatchObject({ name: 'clean', capacity: { vcpus: 2 } });
    const env = (await readFile(path.join(dir, 'env.txt'), 'utf8')).split('\n');
    expect(env).toContain('PATH=/usr/sbin:/usr/bin:/sbin:/bin');
    expect(env.join('\n')).not.toContain(CANARY);
    expect(env.some((line) => line.startsWith('DATABASE_URL='))).toBe(false);
  });
});

describe('a hypervisor is registered once', () => {
  async function expectConflict(input: Record<string, unknown>, holder: string): Promise<void> {
    const answer = await register(input);
    expect(answer.body.error?.data.code).toBe('CONFLICT');
    expect(answer.body.error?.data.vagoth).toMatchObject({
      type: 'KeyConflict',
      details: { key: expect.stringMatching(/^hypervisor:/), holder: `host ${holder}` },
    });
    await expect(h.api.hosts.get({ name: input.name as string })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
  }

  it('refuses a simulated host under a second name or spelling, and takes a retry', async () => {
    const uri = await h.simulatedHost('once');
    const first = await register({ name: 'once', driver: 'libvirt', uri });
    expect(first.body.result?.data).toMatchObject({ name: 'once', uri });
    // A retry of the same registration joins it.
    expect((await register({ name: 'once', driver: 'libvirt', uri })).body.result).toEqual(
      first.body.result,
    );
    await expectConflict({ name: 'twice', driver: 'libvirt', uri }, 'once');
    const file = uri.slice('test://'.length);
    await expectConflict({ name: 'slashes', driver: 'libvirt', uri: `test:///${file}` }, 'once');
    const link = path.join(path.dirname(file), 'alias.xml');
    await symlink(file, link);
    await expectConflict({ name: 'alias', driver: 'libvirt', uri: `test://${link}` }, 'once');
    expect((await h.api.hosts.list()).filter((x) => x.name === 'once')).toHaveLength(1);
  });

  it('keeps hypervisor: keys for hosts: no other node can take one', async () => {
    await expect(
      h.api.nodes.create({ name: 'squatter', type: 'rack', keys: ['hypervisor:uri:test:///x'] }),
    ).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    // Past the API, the registry itself refuses.
    const [rack] = await h.sql<{ id: string }[]>`
      INSERT INTO nodes (name, type) VALUES ('rack-1', 'rack') RETURNING id`;
    await expect(
      h.sql`INSERT INTO node_keys (key, node_id) VALUES ('hypervisor:uri:test:///x', ${rack!.id})`,
    ).rejects.toMatchObject({ code: '23514' });
  });

  it('refuses a geats agent reached by a second path', async () => {
    const { agent } = await geatsHost('geats-once');
    const first = await register({ name: 'geats-once', driver: 'geats', uri: `geats://${agent}` });
    expect(first.body.result?.data).toMatchObject({ name: 'geats-once' });
    const dir = path.join(agents, 'geats-alias');
    await symlink(path.dirname(agent), dir);
    await expectConflict(
      { name: 'geats-alias', driver: 'geats', uri: `geats://${dir}/geats-agent` },
      'geats-once',
    );
  });
});
