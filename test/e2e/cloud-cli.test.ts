import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { settle, startHarness, type Harness } from '../support/harness.ts';
import { runVagoth } from '../support/vagoth-cli.ts';

let h: Harness;
let dir: string;
/** Each user's token file, as `cloud-tokens create --token-file` wrote it. */
const tokenFile = (user: string) => path.join(dir, `${user}.token`);

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'vagoth-cloud-cli-'));
  const images = path.join(dir, 'images');
  await mkdir(images);
  await writeFile(path.join(images, 'disk.raw'), randomBytes(1024 * 1024));
  h = await startHarness({
    http: true,
    cloud: {},
    images: {
      store: path.join(dir, 'store'),
      sources: { dirs: [images], urls: [] },
      maxBytes: 64 * 1024 * 1024,
    },
  });
  const uri = await h.simulatedHost('cc-hv');
  await h.api.hosts.register({ name: 'cc-hv', driver: 'libvirt', uri, diskGiB: 100 });
  const image = await h.api.images.create({
    name: 'base',
    source: path.join(images, 'disk.raw'),
    format: 'raw',
  });
  await settle(h, image.operation!);
});
afterAll(async () => {
  await h?.close();
  await rm(dir, { recursive: true, force: true });
});

/**
 * Runs `vagoth <line> <more...>` with these variables and the cluster API's URL only (the
 * cloud's URL is found beside it); resolves even when it fails.
 */
async function vagothWith(vars: NodeJS.ProcessEnv, line: string, ...more: string[]) {
  const { VAGOTH_TOKEN: _t, VAGOTH_PROJECT: _p, VAGOTH_CLOUD_URL: _u, ...rest } = process.env;
  const env = { ...rest, VAGOTH_API_URL: h.apiUrl, VAGOTH_DATA_DIR: dir, ...vars };
  return runVagoth(env, [...line.split(' '), ...more]);
}

/** As the cloud's admin. */
const admin = (line: string, ...more: string[]) =>
  vagothWith({ VAGOTH_TOKEN: h.cloud!.adminToken }, line, ...more);

/** As a user, with the token in its file, working in project `web` unless told otherwise. */
async function as(user: string, line: string, ...more: string[]) {
  const token = (await readFile(tokenFile(user), 'utf8')).trim();
  return vagothWith({ VAGOTH_TOKEN: token, VAGOTH_PROJECT: 'web' }, line, ...more);
}

/** Succeeds, and answers stdout. */
async function ok(run: Promise<{ code: number; stdout: string; stderr: string }>) {
  const { code, stdout, stderr } = await run;
  expect(stderr).toBe('');
  expect(code).toBe(0);
  return stdout;
}

const json = <T>(text: string) => JSON.parse(text) as T;

describe('the vagoth command on the cloud', () => {
  it('sets up projects, users, grants and quotas as an admin, in tables', async () => {
    expect(await ok(admin('clusters list'))).toMatch(
      /^NAME\s+DRIVER\s+REGION\s+DRAINING\s+TAGS\s+URL\nlocal\s+local\s+default\s+no\s+-\s+-$/m,
    );
    const local = json<{ capacity: { hosts: number } }>(
      await ok(admin('clusters get local --json')),
    );
    expect(local.capacity.hosts).toBe(1);

    for (const project of ['web', 'other']) await ok(admin('projects create', project));
    for (const user of ['alice', 'bob']) await ok(admin('users create', user));
    await ok(admin('projects add-member web alice --role member'));
    const members = await ok(admin('projects add-member web bob --role reader'));
    expect(members).toMatch(/^USER\s+ROLE\s+ADDED\n/);
    expect(members).toMatch(/^alice\s+member\s/m);
    expect(members).toMatch(/^bob\s+reader\s/m);

    await ok(admin('clusters publish-image local base --public'));
    const granted = await ok(admin('clusters grant-network local default --project web'));
    expect(granted).toMatch(/^local\s+default\s+web$/m);

    await ok(admin('quotas set --project web --instances 1 --vcpus 4'));
    // A limit not given stays; `none` takes one away.
    const quota = await ok(
      vagothWith(
        { VAGOTH_TOKEN: h.cloud!.adminToken, VAGOTH_PROJECT: 'web' },
        'quotas set --memory 4096 --vcpus none',
      ),
    );
    expect(quota).toMatch(/^RESOURCE\s+LIMIT\s+USED\ninstances\s+1\s+0\nvcpus\s+none\s+0\n/);
    expect(quota).toMatch(/^memory\s+4096MiB\s+0MiB$/m);
  });

  it("makes a member's and a reader's token into files, never printing them", async () => {
    const made = await ok(
      admin(
        'cloud-tokens create alice-web --user alice --project web --token-file',
        tokenFile('alice'),
      ),
    );
    const secret = (await readFile(tokenFile('alice'), 'utf8')).trim();
    expect(secret).toMatch(/^vgc_/);
    expect((await stat(tokenFile('alice'))).mode & 0o777).toBe(0o600);
    expect(made).not.toContain(secret);
    expect(made).toMatch(/^\S+\s+alice-web\s+alice\s+web\s+read-write\s+-\s+-$/m);

    // An existing file is not overwritten, and no token is made for it.
    const again = await admin(
      'cloud-tokens create alice-2 --user alice --token-file',
      tokenFile('alice'),
    );
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('EEXIST');
    expect((await readFile(tokenFile('alice'), 'utf8')).trim()).toBe(secret);
    expect(await ok(admin('cloud-tokens list --user alice'))).not.toContain('alice-2');

    await ok(admin('cloud-tokens create bob --user bob --token-file', tokenFile('bob')));
    expect(await ok(as('alice', 'users me'))).toMatch(/^alice\s+no\s/m);
  });

  it('creates, lists, stops and deletes an instance as a member', async () => {
    const create = 'instances create web-1 --vcpus 1 --memory 256 --image base --nic default';
    const created = await ok(as('alice', `${create} --wait`));
    const header = /^NAME\s+STATE\s+CLUSTER\s+VCPUS\s+MEMORY\s+DISK\s+IMAGE\s+ADDRESSES$/m;
    expect(created).toMatch(header);
    expect(created).toMatch(/^web-1\s+running\s+local\s+1\s+256MiB\s+0GiB\s+base\s+default=10\./m);

    const listed = await ok(as('alice', 'instances list'));
    expect(listed).toMatch(header);
    expect(listed.trim().split('\n')).toHaveLength(2);
    const [one] = json<Array<{ name: string; state: string; addresses: unknown[] }>>(
      await ok(as('bob', 'instances list --json')),
    );
    expect(one).toMatchObject({
      name: 'web-1',
      state: 'running',
      addresses: [{ network: 'default' }],
    });

    // Over the project's quota of one instance: refused, naming it.
    const over = await as('alice', 'instances create web-2 --vcpus 1 --memory 256 --image base');
    expect(over.code).toBe(1);
    expect(over.stderr).toMatch(/instances quota.*PRECONDITION_FAILED/);

    expect(await ok(as('alice', 'instances stop web-1 --wait'))).toMatch(/^web-1\s+stopped\s/m);
    const history = await ok(as('alice', 'instances operations web-1'));
    expect(history).toMatch(/^AT\s+USER\s+ACTION\s+OPERATION\s+URL\n/);
    expect(history).toMatch(/\salice\s+instances\.stop\s+\S+\s+http/);
    expect(await ok(as('alice', 'instances start web-1'))).toMatch(/^KIND\s+OPERATION\s+URL\n/);

    const events = await ok(as('bob', 'projects events --limit 50'));
    expect(events).toMatch(/^\d+\s+.*\salice\s+instances\.stop\s+web-1\s/m);

    // --wait follows the decommission in the cluster to its end.
    expect(await ok(as('alice', 'instances delete web-1 --wait'))).toMatch(
      /instance web-1 deleted/,
    );
    const gone = await as('alice', 'instances get web-1');
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain('NOT_FOUND');
  });

  it('refuses a hostile or careless user', async () => {
    // Another project's instance, and the project itself, are not there for alice.
    await ok(admin('clusters publish-image local base --project other'));
    await ok(
      admin('instances create x-1 --project other --vcpus 1 --memory 128 --image base --wait'),
    );
    for (const project of ['other', 'web']) {
      const peek = await as('alice', 'instances get x-1 --project', project);
      expect(peek.code).toBe(1);
      expect(peek.stderr).toContain('NOT_FOUND');
    }
    expect(await ok(as('alice', 'projects list'))).not.toContain('other');

    // No project: a usage error naming --project, before any call.
    const none = await admin('instances list');
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('--project');
    // A grant names its project or says --public.
    expect((await admin('clusters grant-network local default')).code).toBe(2);

    // A reader reads and may not create; a member may not administer.
    const reader = await as('bob', 'instances create b-1 --vcpus 1 --memory 128 --image base');
    expect(reader.code).toBe(1);
    expect(reader.stderr).toContain('FORBIDDEN');
    expect((await as('alice', 'projects create mine')).stderr).toContain('FORBIDDEN');
    expect((await as('alice', 'users list')).stderr).toContain('FORBIDDEN');

    // Bad numbers and shapes stop at the command line.
    const bad = await as('alice', 'instances create w --vcpus lots --memory 1 --image base');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--vcpus must be a whole number');
    const mac = await as(
      'alice',
      'instances create w --vcpus 1 --memory 128 --image base --nic default,mac=52:54:00:00:00:01',
    );
    expect(mac.stderr).toContain('expected network[,ip=ADDRESS]');
  });

  it('finds its token and its cloud, and says what is wrong with them', async () => {
    // No VAGOTH_TOKEN: the admin token file in the data directory.
    const empty = await mkdtemp(path.join(tmpdir(), 'vagoth-cloud-cli-none-'));
    try {
      const none = await vagothWith({ VAGOTH_DATA_DIR: empty }, 'users me');
      expect(none.code).toBe(1);
      expect(none.stderr).toContain('UNAUTHORIZED');
      expect(none.stderr).toContain(`${empty}/cloud-admin-token is readable`);
      await writeFile(path.join(empty, 'cloud-admin-token'), `${h.cloud!.adminToken}\n`);
      expect(await ok(vagothWith({ VAGOTH_DATA_DIR: empty }, 'users me'))).toMatch(/^admin\s/m);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
    // A cluster token opens no door of the cloud's.
    const cluster = await vagothWith({ VAGOTH_TOKEN: h.token }, 'users me');
    expect(cluster.stderr).toContain('a cluster token (vgt_...)');

    // VAGOTH_CLOUD_URL, when the cloud is elsewhere.
    const elsewhere = await vagothWith(
      { VAGOTH_TOKEN: h.cloud!.adminToken, VAGOTH_CLOUD_URL: h.cloud!.url },
      'projects list --json',
    );
    expect(json<Array<{ name: string }>>(elsewhere.stdout).map((p) => p.name)).toEqual(
      expect.arrayContaining(['web', 'other']),
    );

    // A revoked token stops at once.
    const [bobs] = json<Array<{ id: string }>>(
      await ok(admin('cloud-tokens list --user bob --json')),
    );
    await ok(admin('cloud-tokens revoke', bobs!.id));
    expect((await as('bob', 'projects list')).stderr).toContain('UNAUTHORIZED');
  });
});
