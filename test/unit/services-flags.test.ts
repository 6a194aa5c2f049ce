import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLOUD_OPTIONS, CloudArgs } from '../../cli/cloud-args.ts';
import { SERVICES_OPTIONS, type ServiceArgs } from '../../cli/services-args.ts';
import { createInput, updateInput } from '../../cli/services-spec.ts';
import { UsageError } from '../../cli/usage.ts';

/** The options as main.ts parses them, for `services <line>` in project shop. */
function argsOf(line: string, ...more: string[]): ServiceArgs {
  const { values, positionals } = parseArgs({
    args: ['services', ...line.split(' '), ...more],
    options: { ...CLOUD_OPTIONS, ...SERVICES_OPTIONS },
    allowPositionals: true,
  });
  return new CloudArgs(values, positionals, { VAGOTH_PROJECT: 'shop' });
}

const TEMPLATE = '--image base --vcpus 1 --memory 64';
const create = (line: string, ...more: string[]) =>
  createInput(argsOf(`create web ${TEMPLATE} ${line}`.trimEnd(), ...more));
/** An update that never needs the service read (no template or rollout option). */
const update = (line: string, ...more: string[]) =>
  updateInput(argsOf(`update web ${line}`.trimEnd(), ...more), () => {
    throw new Error('read the service');
  });

/** The usage error a command line gets, as its message; fails if it gets none. */
async function refusal(made: () => Promise<unknown>): Promise<string> {
  const err = await made().then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UsageError);
  return (err as UsageError).message;
}

const SECRET = 'tok-3f9a-DO-NOT-SHOW';
let dir: string;
const file = (name: string) => path.join(dir, name);

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'vagoth-services-flags-'));
  await writeFile(file('east.token'), `${SECRET}\n`);
  await writeFile(file('west.token'), `${SECRET}-west\r\n`);
  await writeFile(file('spaced.token'), `${SECRET} with a space\n`);
  await writeFile(file('two-lines.token'), `${SECRET}\n${SECRET}\n`);
  await writeFile(file('empty.token'), '');
  await writeFile(file('long.token'), SECRET.repeat(20));
  await writeFile(
    file('spec.json'),
    JSON.stringify({
      replicas: 9,
      health: { tcp: 22 },
      placements: [{ cluster: 'a', replicas: 9 }],
      clouds: { north: { token: 'file-token', project: 'n' } },
      unhealthyAfter: 7,
    }),
  );
});

afterAll(() => rm(dir, { recursive: true, force: true }));

describe('services --placement', () => {
  it('takes replicas, and a cloud and a cluster or a region', async () => {
    const input = await create(
      '--placement replicas=2,cluster=a --placement cloud=east,region=eu,replicas=1',
    );
    expect(input.placements).toEqual([
      { cluster: 'a', replicas: 2 },
      { cloud: 'east', region: 'eu', replicas: 1 },
    ]);
    expect(input).not.toHaveProperty('replicas'); // the API takes their sum
    expect((await create('--placement replicas=0')).placements).toEqual([{ replicas: 0 }]);
  });

  it('on update, none lets its cloud place them again', async () => {
    expect(await update('--placement none')).toMatchObject({ placements: null });
    expect(await update('--placement replicas=3')).toMatchObject({
      placements: [{ replicas: 3 }],
    });
  });

  it.each([
    ['cluster=a', 'needs replicas=N'],
    ['', 'takes key=value'],
    ['replicas', 'takes key=value, not "replicas"'],
    ['=3', 'takes key=value'],
    ['replicas=2,zone=a', 'has no key "zone"'],
    ['replicas=2,replicas=3', 'names replicas twice'],
    ['replicas=2,cluster=a,cluster=b', 'names cluster twice'],
    ['replicas=two', 'replicas must be a whole number, not two'],
    ['replicas=-1', 'replicas must be a whole number'],
    ['replicas=2,,cluster=a', 'takes key=value, not ""'],
    ['replicas=2,cluster=a,region=b', 'placements.0.region (--placement): name a cluster or'],
    ['replicas=2,cluster=A_1', 'placements.0.cluster (--placement): must be a cluster name'],
    ['replicas=2,cloud=', 'placements.0.cloud (--placement): must be a cloud name'],
    ['replicas=1001', 'placements.0.replicas (--placement): Too big'],
  ])('refuses --placement %j, naming the option', async (spec, said) => {
    const message = await refusal(() => create('', `--placement=${spec}`));
    expect(message).toContain('--placement');
    expect(message).toContain(said);
  });

  it('refuses none with others, and none on create', async () => {
    expect(await refusal(() => update('--placement none --placement replicas=1'))).toContain(
      '--placement none takes no other --placement',
    );
    expect(await refusal(() => create('--placement none'))).toContain(
      '--placement none is for services update',
    );
  });

  it('refuses placements that do not add up to --replicas, naming both', async () => {
    const message = await refusal(() => create('--replicas 3 --placement replicas=2'));
    expect(message).toContain('placements (--placement): must add up to replicas (3), not 2');
  });
});

describe('services --health, --unhealthy-after, --grace', () => {
  it('takes a TCP or an HTTP check, its path / by default', async () => {
    expect(await create('--replicas 1 --health tcp:22')).toMatchObject({ health: { tcp: 22 } });
    expect(await create('--replicas 1 --health http:8080')).toMatchObject({
      health: { http: { port: 8080, path: '/' } },
    });
    expect(await create('--replicas 1 --health http:80/healthz?full=1')).toMatchObject({
      health: { http: { port: 80, path: '/healthz?full=1' } },
    });
    expect(await update('--health none')).toMatchObject({ health: null });
  });

  it('takes how many failed checks make an instance dead, and the grace', async () => {
    const input = await create('--replicas 1 --unhealthy-after 5 --grace 300');
    expect(input).toMatchObject({ unhealthyAfter: 5, unknownGraceSeconds: 300 });
    expect(await update('--grace 0')).toMatchObject({ unknownGraceSeconds: 0 });
  });

  it.each([
    ['--health tcp', '--health takes tcp:PORT or http:PORT[/PATH], not "tcp"'],
    ['--health udp:53', '--health takes tcp:PORT'],
    ['--health tcp:22/x', '--health takes tcp:PORT'],
    ['--health http:', '--health takes tcp:PORT'],
    ['--health http:x/', '--health takes tcp:PORT'],
    ['--health none', '--health none is for services update'],
    ['--health tcp:0', 'health.tcp (--health): Too small'],
    ['--health tcp:65536', 'health.tcp (--health): Too big'],
    ['--health http:80/a\\b', "health.http.path (--health): must be a path starting with '/'"],
    ['--unhealthy-after 0', 'unhealthyAfter (--unhealthy-after): Too small'],
    ['--unhealthy-after 101', 'unhealthyAfter (--unhealthy-after): Too big'],
    ['--unhealthy-after x', '--unhealthy-after must be a whole number, not "x"'],
    ['--grace 86401', 'unknownGraceSeconds (--grace): Too big'],
    ['--grace -1', '--grace must be a whole number'],
  ])('refuses %s, naming the option', async (line, said) => {
    // As `--flag=value`: a value starting with '-' is not taken as an option.
    const message = await refusal(() => create('--replicas 1', line.replace(' ', '=')));
    expect(message).toContain(said);
  });

  it('on update, --health none is alone in saying none', async () => {
    expect(await refusal(() => update('--health tcp:x'))).toContain(
      '--health takes tcp:PORT or http:PORT[/PATH] or none, not "tcp:x"',
    );
  });
});

describe('services --cloud-token', () => {
  it('reads each token from its file, one trailing newline trimmed', async () => {
    const input = await create(
      `--replicas 1 --cloud-token east=shop-east:${file('east.token')}`,
      '--cloud-token',
      `west=w:${file('west.token')}`,
    );
    expect(input.clouds).toEqual({
      east: { token: SECRET, project: 'shop-east' },
      west: { token: `${SECRET}-west`, project: 'w' },
    });
    // A file path may hold ':' and '=': the first of each splits.
    await writeFile(file('a:b=c'), SECRET);
    expect((await update(`--cloud-token east=p:${file('a:b=c')}`)).clouds).toEqual({
      east: { token: SECRET, project: 'p' },
    });
  });

  it.each([
    ['east', 'takes NAME=PROJECT:FILE'],
    ['east=shop', 'takes NAME=PROJECT:FILE'],
    ['east=shop:', 'takes NAME=PROJECT:FILE'],
    ['=shop:FILE', 'takes NAME=PROJECT:FILE'],
    ['east=:FILE', 'takes NAME=PROJECT:FILE'],
    [`east=shop:${path.join('/nonexistent', 'east.token')}`, 'cannot read /nonexistent/east.token'],
    ['east=shop:DIR', 'cannot read'],
    ['east=shop:spaced.token', 'clouds.east.token (--cloud-token): must be a token'],
    ['east=shop:two-lines.token', 'clouds.east.token (--cloud-token): must be a token'],
    ['east=shop:empty.token', 'clouds.east.token (--cloud-token): Too small'],
    ['east=shop:long.token', 'clouds.east.token (--cloud-token): Too big'],
    ['east=Shop:east.token', 'clouds.east.project (--cloud-token): must be a project name'],
    ['East=shop:east.token', 'clouds (--cloud-token): must be keyed by cloud names'],
  ])('refuses --cloud-token %s, never saying what a file holds', async (spec, said) => {
    const given = spec.replace(/:(DIR|\w[\w-]*\.token)$/, (_, f: string) =>
      f === 'DIR' ? `:${dir}` : `:${file(f)}`,
    );
    const message = await refusal(() => create('--replicas 1 --cloud-token', given));
    expect(message).toContain('--cloud-token');
    expect(message).toContain(said);
    expect(message).not.toContain(SECRET);
    expect(message).not.toContain(SECRET.slice(0, 8));
  });

  it('refuses a cloud named twice', async () => {
    const message = await refusal(() =>
      update(
        `--cloud-token east=a:${file('east.token')}`,
        '--cloud-token',
        `east=b:${file('west.token')}`,
      ),
    );
    expect(message).toContain('names cloud east twice');
    expect(message).not.toContain(SECRET);
  });
});

describe('these options over --file', () => {
  it('win over the spec; clouds are merged, one entry a cloud', async () => {
    const input = await create(
      `--file ${file('spec.json')} --replicas 2 --placement replicas=2,cluster=b --health http:80`,
      '--cloud-token',
      `east=e:${file('east.token')}`,
    );
    expect(input).toMatchObject({
      replicas: 2,
      placements: [{ cluster: 'b', replicas: 2 }],
      health: { http: { port: 80, path: '/' } },
      unhealthyAfter: 7,
      clouds: {
        north: { token: 'file-token', project: 'n' },
        east: { token: SECRET, project: 'e' },
      },
    });
  });

  it('counts as the change an update needs, and the message names them', async () => {
    expect(await update(`--cloud-token east=e:${file('east.token')}`)).toMatchObject({
      clouds: { east: { project: 'e' } },
    });
    const message = await refusal(() => update(''));
    for (const flag of [
      '--placement',
      '--health',
      '--unhealthy-after',
      '--grace',
      '--cloud-token',
    ]) {
      expect(message).toContain(flag);
    }
  });
});

describe('services update with a template option', () => {
  // `update` fails on a read: a bad option is refused before the service is read.
  it.each([
    ['--grace=x', '--grace must be a whole number'],
    ['--unhealthy-after=-1', '--unhealthy-after must be a whole number'],
    ['--health=udp:53', '--health takes tcp:PORT'],
    ['--placement=cluster=a', '--placement "cluster=a": needs replicas=N'],
    ['--cloud-token=east=shop:/nonexistent/t', '--cloud-token "east=shop:/nonexistent/t": cannot'],
    ['--replicas=x', '--replicas must be a whole number'],
    ['--max-surge=x', '--max-surge must be a whole number'],
  ])('refuses %s before it reads the service', async (option, said) => {
    expect(await refusal(() => update('--memory 128', option))).toContain(said);
  });
});

describe('--placement over --file', () => {
  // spec.json says replicas 9, placed in cluster a.
  it('gives the count, the spec’s replicas going with its placements', async () => {
    const line = `--file ${file('spec.json')} --placement replicas=2,cluster=b`;
    for (const input of [await create(line), await update(line)]) {
      expect(input.placements).toEqual([{ cluster: 'b', replicas: 2 }]);
      expect(input.replicas ?? 2).toBe(2);
    }
  });

  it('still refuses a --replicas they do not add up to; none keeps the spec’s', async () => {
    const line = `--file ${file('spec.json')} --replicas 3 --placement replicas=2,cluster=b`;
    expect(await refusal(() => update(line))).toContain('must add up to replicas (3), not 2');
    expect(await update(`--file ${file('spec.json')} --placement none`)).toMatchObject({
      replicas: 9,
      placements: null,
    });
  });
});
