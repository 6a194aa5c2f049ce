import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenVerifier } from '../../api/token-verifier.ts';
import { createToken, ROLES, type Role } from '../../registry/tokens.ts';
import { ensureAdminToken } from '../../workers/api-deps.ts';
import { startHarness, type Harness } from '../support/harness.ts';
import { procedures, rawCall, withToken } from '../support/raw-call.ts';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ http: true });
});
afterAll(async () => {
  await h?.close();
});

const ALL = procedures();
// Not a valid input of any procedure: a call that gets past the token check is refused for its
// input (or, taking none, answers), so no call here changes the cluster.
const PROBE = { name: 7, id: 7, __probe: true };

async function tokenWith(role: Role, expiresAt: Date | null = null): Promise<string> {
  return (await createToken(h.sql, { name: `auth-${role}`, role, expiresAt })).token;
}

describe('every procedure needs a valid token', () => {
  it('covers every procedure of the router, the tokens among them', () => {
    expect(ALL.length).toBeGreaterThan(30);
    expect(ALL.map((p) => p.path)).toEqual(
      expect.arrayContaining(['tokens.create', 'tokens.list', 'tokens.revoke', 'vms.create']),
    );
  });

  it('refuses calls without one, or with a forged, malformed, revoked or expired one', async () => {
    const fresh = await createToken(h.sql, { name: 'to-revoke', role: 'admin' });
    await h.api.tokens.revoke({ id: fresh.id });
    const expired = await tokenWith('admin', new Date(Date.now() - 1000));
    const variants: Record<string, Record<string, string>> = {
      none: {},
      forged: withToken(`vgt_${randomBytes(32).toString('base64url')}`),
      malformed: withToken('letmein'),
      'not bearer': { authorization: `Basic ${Buffer.from('admin:admin').toString('base64')}` },
      'bearer twice': { authorization: `Bearer ${h.token} Bearer ${h.token}` },
      'token alone': { authorization: h.token },
      revoked: withToken(fresh.token),
      expired: withToken(expired),
    };
    for (const { path: p, type } of ALL) {
      for (const [variant, headers] of Object.entries(variants)) {
        const answer = await rawCall(h.apiUrl, p, type, PROBE, headers);
        expect({ p, variant, status: answer.status, code: answer.code }).toEqual({
          p,
          variant,
          status: 401,
          code: 'UNAUTHORIZED',
        });
      }
    }
  });
});

describe('what each role may call', () => {
  // The rule, stated as the README states it, and tried on every procedure over HTTP.
  const mayCall = (role: Role, p: string, type: string) =>
    role === 'admin' || (!p.startsWith('tokens.') && (role === 'operator' || type === 'query'));

  it.each(ROLES)('%s', async (role) => {
    const token = await tokenWith(role);
    for (const { path: p, type } of ALL) {
      const answer = await rawCall(h.apiUrl, p, type, PROBE, withToken(token));
      const refused = answer.code === 'FORBIDDEN' || answer.code === 'UNAUTHORIZED';
      expect({ p, type, refused, status: answer.status }).toMatchObject({
        p,
        type,
        refused: !mayCall(role, p, type),
      });
      if (refused) expect(answer.status).toBe(403);
    }
  });

  it('a reader is refused a valid create, and nothing is created', async () => {
    const reader = await h.callerWith('reader');
    await expect(
      reader.api.vms.create({ name: 'by-reader', vcpus: 1, memoryMiB: 64 }),
    ).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(
      reader.api.networks.create({ name: 'by-reader', cidr: '10.9.0.0/24' }),
    ).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(reader.api.tokens.create({ name: 'mine', role: 'admin' })).rejects.toMatchObject({
      code: 'FORBIDDEN',
    });
    const [row] = await h.sql`SELECT count(*)::int AS n FROM nodes WHERE name = 'by-reader'`;
    expect(row!.n).toBe(0);
    expect(await reader.api.networks.list()).toEqual(await h.api.networks.list());
  });

  it('an operator may not make or see tokens', async () => {
    const operator = await h.callerWith('operator');
    await expect(operator.api.tokens.list()).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(
      operator.api.tokens.create({ name: 'escalate', role: 'admin' }),
    ).rejects.toMatchObject({ code: 'FORBIDDEN' });
  });
});

describe('tokens', () => {
  it('are shown once, stored only as a hash, listed without secrets, and revoked at once', async () => {
    const made = await h.api.tokens.create({ name: 'ci-bot', role: 'operator' });
    expect(made.token).toMatch(/^vgt_[A-Za-z0-9_-]{43}$/);
    const rows = await h.sql`SELECT * FROM api_tokens`;
    expect(JSON.stringify(rows)).not.toContain(made.token.slice(4));
    const listed = await h.api.tokens.list();
    expect(listed.find((t) => t.id === made.id)).toMatchObject({
      name: 'ci-bot',
      role: 'operator',
    });
    expect(JSON.stringify(listed)).not.toContain(made.token);

    const ok = await rawCall(h.apiUrl, 'vms.list', 'query', {}, withToken(made.token));
    expect(ok.status).toBe(200);
    // The scheme is case-insensitive.
    const lower = { authorization: `bearer ${made.token}` };
    expect((await rawCall(h.apiUrl, 'vms.list', 'query', {}, lower)).status).toBe(200);
    await h.api.tokens.revoke({ id: made.id });
    const after = await rawCall(h.apiUrl, 'vms.list', 'query', {}, withToken(made.token));
    expect(after.code).toBe('UNAUTHORIZED');
    expect((await h.api.tokens.list()).map((t) => t.id)).not.toContain(made.id);
    expect(
      (await h.api.tokens.list({ includeRevoked: true })).find((t) => t.id === made.id)?.revokedAt,
    ).toBeTruthy();
  });

  it('expire', async () => {
    const made = await h.api.tokens.create({ name: 'short', role: 'reader', expiresInSeconds: 1 });
    expect((await rawCall(h.apiUrl, 'vms.list', 'query', {}, withToken(made.token))).status).toBe(
      200,
    );
    await new Promise((r) => setTimeout(r, 1_100));
    expect((await rawCall(h.apiUrl, 'vms.list', 'query', {}, withToken(made.token))).code).toBe(
      'UNAUTHORIZED',
    );
  });

  it('refuses a bad create naming the field', async () => {
    for (const input of [
      { name: 'x', role: 'root' },
      { name: 'x', role: 'reader', expiresInSeconds: -5 },
      { name: '\ud800', role: 'reader' },
      { name: 'x', role: 'reader', hash: 'aa' },
    ]) {
      const answer = await rawCall(
        h.apiUrl,
        'tokens.create',
        'mutation',
        input,
        withToken(h.token),
      );
      expect(answer.status).toBe(400);
    }
    await expect(h.api.tokens.revoke({ id: crypto.randomUUID() })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
  });

  it('cost no database round trip while remembered; another process sees a revocation within its ttl', async () => {
    let queries = 0;
    const counted = postgres(h.databaseUrl, { max: 1, debug: () => queries++ });
    try {
      const verifier = new TokenVerifier(counted, { ttlMs: 300, maxEntries: 10 });
      const made = await createToken(h.sql, { name: 'hot', role: 'operator' });
      await counted`SELECT 1`; // the connection's own set-up queries are not the verifier's
      queries = 0;
      await Promise.all(Array.from({ length: 50 }, () => verifier.verify(made.token)));
      for (let i = 0; i < 200; i++) expect(await verifier.verify(made.token)).not.toBeNull();
      expect(queries).toBe(1);
      // Revoked through another process's registry connection: this one learns within its ttl.
      await h.api.tokens.revoke({ id: made.id });
      await new Promise((r) => setTimeout(r, 350));
      expect(await verifier.verify(made.token)).toBeNull();
      expect(queries).toBe(2);
      // Bounded: twenty tokens through a cache of ten, and the first is asked for again.
      const many = await Promise.all(
        Array.from({ length: 20 }, (_, i) => createToken(h.sql, { name: `m${i}`, role: 'reader' })),
      );
      for (const t of many) await verifier.verify(t.token);
      const before = queries;
      await verifier.verify(many[0]!.token);
      expect(queries).toBe(before + 1);
    } finally {
      await counted.end();
    }
  });
});

describe('the first admin token', () => {
  it('is made once by API processes starting together, into a file only its owner reads', async () => {
    // Every usable admin of this registry revoked: as if it were new.
    await h.sql`UPDATE api_tokens SET revoked_at = now() WHERE role = 'admin'`;
    const dir = await mkdtemp(path.join(tmpdir(), 'vagoth-admin-'));
    try {
      const file = path.join(dir, 'data', 'admin-token');
      const made = await Promise.all(
        Array.from({ length: 5 }, () => ensureAdminToken(h.sql, file)),
      );
      expect(made.filter((m) => m !== null)).toEqual([file]);
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      const token = (await readFile(file, 'utf8')).trim();
      const answer = await rawCall(h.apiUrl, 'tokens.list', 'query', {}, withToken(token));
      expect(answer.status).toBe(200);
      expect(await ensureAdminToken(h.sql, file)).toBeNull();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
