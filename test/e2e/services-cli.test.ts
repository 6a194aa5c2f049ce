import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCloudContext } from '../../cloud/api/context.ts';
import { createCloudCaller } from '../../cloud/api/router.ts';
import { cloudMount } from '../../cloud/api/server.ts';
import { startApiServer, type ApiServer } from '../../api/server.ts';
import { TtlCache } from '../../common/ttl-cache.ts';
import { servicesMount } from '../../services/api/server.ts';
import { localCloud } from '../../services/clouds/index.ts';
import { servicesWorkerFor, shopWithMember, smallImage } from '../support/cloud-cluster.ts';
import { cloudClient, type CloudClient } from '../support/cloud-client.ts';
import { API_LIMITS, startHarness, type Harness } from '../support/harness.ts';
import { runVagoth } from '../support/vagoth-cli.ts';

/**
 * The `vagoth services` verbs as a user runs them: the real command against the API server
 * `npm start` composes (cluster, cloud and service layer on one origin), a Temporal dev
 * server, PostgreSQL and a simulated hypervisor. What each verb did is read back from the
 * cloud, not from the command's own words.
 */
let image: Awaited<ReturnType<typeof smallImage>>;
let h: Harness;
let server: ApiServer;
let admin: CloudClient;
let worker: { shutdown(): Promise<void> };
let dir: string;
const tokenFile = (user: string) => path.join(dir, `${user}.token`);
const SECRET = '#cloud-config\npassword: hunter2-do-not-show\n';

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'vagoth-services-cli-'));
  image = await smallImage('vagoth-services-cli-img-');
  h = await startHarness({ cloud: {}, images: image.images() });
  await image.addHostWithImage(h, 'svc-cli-host', { cpus: 32, memoryMiB: 32768 });
  admin = cloudClient(h.cloud!.url, h.cloud!.adminToken);
  await writeFile(tokenFile('ann'), `${await shopWithMember(admin, 'ann')}\n`);
  await admin.users.create.mutate({ name: 'rob' });
  await admin.projects.addMember.mutate({ project: 'shop', user: 'rob', role: 'reader' });
  const rob = await admin.tokens.create.mutate({ name: 'rob', user: 'rob', project: 'shop' });
  await writeFile(tokenFile('rob'), `${rob.token}\n`);
  await writeFile(path.join(dir, 'user-data'), SECRET);
  worker = await servicesWorkerFor(h);
  // As startLayersAbove mounts them: the cloud and the service layer beside the cluster's API.
  const services = servicesMount(
    {
      sql: h.sql,
      temporal: h.temporal,
      cloudFor: (token) =>
        localCloud(createCloudCaller(createCloudContext(h.cloud!.deps, `Bearer ${token}`))),
      callers: new TtlCache(5_000),
    },
    API_LIMITS,
  );
  server = await startApiServer(h.deps, { host: '127.0.0.1', port: 0, ...API_LIMITS }, [
    cloudMount(h.cloud!.deps, API_LIMITS),
    services,
  ]);
}, 120_000);

afterAll(async () => {
  await server?.close();
  await worker?.shutdown();
  await h?.close();
  await image?.remove();
  await rm(dir, { recursive: true, force: true });
});

/** `vagoth services <line> <more...>` as a user (its token read from its file), in `shop`. */
async function as(user: string, line: string, ...more: string[]) {
  const { VAGOTH_TOKEN: _t, VAGOTH_PROJECT: _p, VAGOTH_CLOUD_URL: _u, ...rest } = process.env;
  const token = (await readFile(tokenFile(user), 'utf8')).trim();
  const env = {
    ...rest,
    VAGOTH_API_URL: server.url,
    VAGOTH_DATA_DIR: dir,
    VAGOTH_TOKEN: token,
    VAGOTH_PROJECT: 'shop',
  };
  return runVagoth(env, ['services', ...line.split(' '), ...more]);
}

/** Succeeds; answers stdout, and the progress lines --wait wrote to stderr. */
async function ok(run: Promise<{ code: number; stdout: string; stderr: string }>) {
  const { code, stdout, stderr } = await run;
  expect(code, stderr).toBe(0);
  return { stdout, progress: stderr.split('\n').filter((l) => l !== '') };
}

const json = <T>(text: string) => JSON.parse(text) as T;

/** The service's instances as the cloud tells them. */
const instances = () => admin.instances.list.query({ project: 'shop', prefix: 'web-' });
const runningCount = async () => (await instances()).filter((i) => i.state === 'running').length;

type Shown = {
  name: string;
  replicas: number;
  revision: string;
  paused: boolean;
  template: { userData: string | null; memoryMiB: number };
  members: Array<{ name: string; revision: string; cloud?: string | null }>;
};
type Detail = Shown & {
  placements: unknown;
  health: unknown;
  unhealthyAfter: number;
  unknownGraceSeconds: number;
  clouds: Array<{ cloud: string; project: string }>;
};

describe('vagoth services', () => {
  it('creates a service and waits until as many instances as it asks are running', async () => {
    const { stdout, progress } = await ok(
      as(
        'ann',
        'create web --image base --vcpus 1 --memory 64 --network default --replicas 2 --every 5',
        '--user-data-file',
        path.join(dir, 'user-data'),
        '--wait',
        '--wait-timeout',
        '40',
      ),
    );
    expect(await runningCount()).toBe(2);
    // A line per change (no terminal here), ending at 2 of 2.
    expect(progress.length).toBeGreaterThan(0);
    for (const line of progress) expect(line).toMatch(/^web: \d+\/2 running/);
    expect(progress.at(-1)).toBe('web: 2/2 running');
    expect(stdout).toMatch(/^NAME\s+STATE\s+RUNNING\s+PENDING\s+REVISION\s/);
    expect(stdout).toMatch(/^web\s+settled\s+2\/2\s+0\s+r[0-9a-f]{12}\s/m);
    expect(stdout).toMatch(/^IMAGE\s+VCPUS\s+MEMORY\s+DISK\s+NETWORKS\s+USER-DATA\s+SSH KEYS$/m);
    expect(stdout).toMatch(/^base\s+1\s+64MiB\s+-\s+default\s+set\s+0$/m);
    for (const i of await instances()) expect(stdout).toMatch(new RegExp(`^${i.name}\\s+r`, 'm'));
    expect(stdout).not.toContain('hunter2');
  });

  it('lists and shows it, in tables and as JSON, never with its user-data', async () => {
    const listed = (await ok(as('rob', 'list'))).stdout;
    expect(listed).toMatch(
      /^NAME\s+STATE\s+RUNNING\s+IMAGE\s+VCPUS\s+MEMORY\s+REVISION\s+SPREAD\s+EVERY\n/,
    );
    expect(listed).toMatch(/^web\s+settled\s+2\/2\s+base\s+1\s+64MiB\s+r[0-9a-f]{12}\s+-\s+5s$/m);
    expect(listed.trim().split('\n')).toHaveLength(2);

    const [one, ...more] = json<Shown[]>((await ok(as('rob', 'list --json'))).stdout);
    expect(more).toEqual([]);
    expect(one).toMatchObject({ name: 'web', replicas: 2, template: { userData: '(set)' } });

    const shown = json<Shown>((await ok(as('rob', 'show web --json'))).stdout);
    const names = (await instances()).map((i) => i.name).sort();
    expect(shown.members.map((m) => m.name).sort()).toEqual(names);
    expect(JSON.stringify(shown)).not.toContain('hunter2');
    expect((await ok(as('rob', 'show web'))).stdout).toMatch(
      /^schedule service:shop\/web, next run \d{4}-/m,
    );
  });

  it('scales and waits, with the answer as JSON on stdout', async () => {
    const { stdout, progress } = await ok(as('ann', 'scale web 3 --wait --json'));
    const scaled = json<Shown>(stdout);
    expect(scaled.replicas).toBe(3);
    expect(scaled.members).toHaveLength(3);
    expect(progress.at(-1)).toBe('web: 3/3 running');
    expect(await runningCount()).toBe(3);
  });

  it('rolls a new template forward, given its user-data again', async () => {
    // The API never shows user-data back: a change of a field alone would lose it.
    const lossy = await as('ann', 'update web --memory 128');
    expect(lossy.code).toBe(2);
    expect(lossy.stderr).toContain('--user-data-file');

    const before = json<Shown>((await ok(as('rob', 'show web --json'))).stdout);
    const updated = await ok(
      as(
        'ann',
        'update web --memory 128 --max-surge 2 --json --wait --user-data-file',
        path.join(dir, 'user-data'),
      ),
    );
    const after = json<Shown>(updated.stdout);
    expect(after.revision).not.toBe(before.revision);
    expect(after.members.every((m) => m.revision === after.revision)).toBe(true);
    const now = await instances();
    expect(now.filter((i) => i.state === 'running')).toHaveLength(3);
    expect(now.every((i) => i.memoryMiB === 128)).toBe(true);
  }, 120_000);

  it('pauses: a change waits until it is resumed', async () => {
    expect((await ok(as('ann', 'pause web'))).stdout).toMatch(/^web\s+paused\s/m);
    // --wait on a paused service fails at once, saying why; the change is recorded.
    const waiting = await as('ann', 'scale web 1 --wait');
    expect(waiting.code).toBe(1);
    expect(waiting.stderr).toContain('web is paused');
    await new Promise((r) => setTimeout(r, 6_000)); // past its period
    expect(await runningCount()).toBe(3);

    const { stdout, progress } = await ok(as('ann', 'resume web --wait'));
    expect(stdout).toMatch(/^web\s+settled\s+1\/1\s/m);
    expect(progress.at(-1)).toBe('web: 1/1 running');
    expect(await runningCount()).toBe(1);
  }, 90_000);

  it('tells its history', async () => {
    const events = (await ok(as('rob', 'events web'))).stdout;
    expect(events).toMatch(/^ID\s+AT\s+ACTOR\s+ACTION\s+DETAIL\n/);
    for (const action of ['create', 'update']) {
      expect(events).toMatch(
        new RegExp(`^\\d+\\s+\\S+ \\S+\\s+ann\\s+services\\.${action}\\s`, 'm'),
      );
    }
    expect(events).toMatch(/\(reconcile\)\s+services\.reconcile\s+\{"created":\["web-/);
    const limited = json<unknown[]>((await ok(as('rob', 'events web --limit 2 --json'))).stdout);
    expect(limited).toHaveLength(2);
  });

  it('refuses a reader’s change and bad input, saying why', async () => {
    const reader = await as('rob', 'scale web 2');
    expect(reader.code, reader.stdout).toBe(1);
    expect(reader.stderr).toContain('needs the member role in project shop (FORBIDDEN)');
    expect((await as('rob', 'delete web')).code).toBe(1);

    const create = 'create web2 --image base --vcpus 1 --memory 64';
    const cases: Array<[string, string]> = [
      [`${create} --replicas=-1`, '--replicas must be a whole number'],
      [`${create} --replicas -1`, "'--replicas'"],
      [`${create} --replicas 1001`, 'replicas (--replicas): Too big'],
      [`${create.replace('web2', 'Web_2')} --replicas 1`, 'name: must be 1-20 lower-case'],
      [`${create} --replicas 1 --spread rack`, '--spread host|cluster, not "rack"'],
      [`${create} --replicas 1 --every 1`, 'everySeconds (--every): Too small'],
      ['scale web many', '<replicas> must be a whole number'],
    ];
    for (const [line, said] of cases) {
      const bad = await as('ann', line);
      expect(bad.code, line).toBe(2);
      expect(bad.stderr, line).toContain(said);
    }
    const spec = path.join(dir, 'bad.json');
    await writeFile(spec, JSON.stringify({ template: { image: 'base', vcpus: '2' } }));
    const fromFile = await as('ann', 'create web2 --replicas 1 --file', spec);
    expect(fromFile.code).toBe(2);
    expect(fromFile.stderr).toContain('template.vcpus (--vcpus)');
    expect(fromFile.stderr).toContain('template.memoryMiB (--memory)');
    // Nothing was made.
    expect(json<Shown[]>((await ok(as('rob', 'list --json'))).stdout).map((s) => s.name)).toEqual([
      'web',
    ]);
  });

  it('places, checks and shows a service from options, and takes its placements back', async () => {
    const create = 'create db --image base --vcpus 1 --memory 64 --network default --every 5';
    // No guest answers a check here: never so many that one is replaced during the test.
    const options = '--placement replicas=1,cluster=local --health http:8080/healthz';
    const { stdout } = await ok(
      as('ann', `${create} ${options} --unhealthy-after 100 --grace 60 --wait`),
    );
    const placed = await admin.instances.list.query({ project: 'shop', prefix: 'db-' });
    expect(placed.map((i) => [i.state, i.cluster])).toEqual([['running', 'local']]);
    const held = json<Detail>((await ok(as('rob', 'show db --json'))).stdout);
    expect(held).toMatchObject({
      replicas: 1,
      placements: [{ cluster: 'local', replicas: 1 }],
      health: { http: { port: 8080, path: '/healthz' } },
      unhealthyAfter: 100,
      unknownGraceSeconds: 60,
      clouds: [],
    });
    expect(held.members.map((m) => [m.name, m.cloud ?? null])).toEqual([[placed[0]!.name, null]]);

    expect(stdout).toMatch(/^-\s+cluster:local\s+1$/m);
    const shown = (await ok(as('rob', 'show db'))).stdout;
    expect(shown).toMatch(/^CLOUD\s+WHERE\s+REPLICAS\n-\s+cluster:local\s+1$/m);
    expect(shown).toMatch(/^HEALTH\s+UNHEALTHY-AFTER\s+GRACE\nhttp:8080\/healthz\s+100\s+60s$/m);
    expect(shown).toMatch(/^INSTANCE\s+REVISION\s+CLOUD\s+CREATED$/m);
    expect(shown).toMatch(new RegExp(`^${placed[0]!.name}\\s+r[0-9a-f]{12}\\s+-\\s+\\d{4}-`, 'm'));
    expect(shown).not.toContain('other clouds');

    const changed = await ok(
      as('ann', 'update db --placement none --health none --grace 30 --json'),
    );
    expect(json<Detail>(changed.stdout)).toMatchObject({
      replicas: 1,
      placements: null,
      health: null,
      unhealthyAfter: 100,
      unknownGraceSeconds: 30,
    });
    const after = (await ok(as('rob', 'show db'))).stdout;
    expect(after).not.toMatch(/^CLOUD\s+WHERE/m);
    expect(after).toMatch(/^none\s+100\s+30s$/m);

    // A token for another cloud is read from its file and sent, never printed: no placement
    // names that cloud, so the API refuses it, and nothing changes.
    const token = path.join(dir, 'east.token');
    await writeFile(token, 'east-secret-do-not-show\n');
    const refused = await as('ann', `update db --cloud-token east=shop:${token}`);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('no placement names cloud east');
    expect(refused.stdout + refused.stderr).not.toContain('east-secret');
    expect(json<Detail>((await ok(as('rob', 'show db --json'))).stdout).clouds).toEqual([]);

    await ok(as('ann', 'delete db --wait'));
    expect(await admin.instances.list.query({ project: 'shop', prefix: 'db-' })).toEqual([]);
  }, 90_000);

  it('creates from a spec file, then deletes and waits until nothing is left', async () => {
    const spec = path.join(dir, 'shop.json');
    await writeFile(
      spec,
      JSON.stringify({
        template: { image: 'base', vcpus: 1, memoryMiB: 64, nics: [{ network: 'default' }] },
        replicas: 1,
        everySeconds: 5,
      }),
    );
    await ok(as('ann', 'create api --replicas 2 --wait --file', spec));
    const api = await admin.instances.list.query({ project: 'shop', prefix: 'api-' });
    expect(api.filter((i) => i.state === 'running')).toHaveLength(2);

    for (const name of ['web', 'api']) {
      const { stdout, progress } = await ok(as('ann', `delete ${name} --wait`));
      expect(stdout.trim()).toBe(`service ${name} deleted`);
      expect(progress.at(-1)).toBe(`${name}: deleted`);
      const gone = await as('rob', `show ${name}`);
      expect(gone.code).toBe(1);
      expect(gone.stderr).toContain('NOT_FOUND');
    }
    expect(await admin.instances.list.query({ project: 'shop' })).toEqual([]);
    expect((await admin.quotas.get.query({ project: 'shop' })).usage.instances).toBe(0);
    expect((await ok(as('rob', 'list'))).stdout.trim()).toBe(
      'NAME  STATE  RUNNING  IMAGE  VCPUS  MEMORY  REVISION  SPREAD  EVERY',
    );
  }, 90_000);
});
