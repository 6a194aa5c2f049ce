import { describe, expect, it } from 'vitest';
import { authorizeCloud, type Caller, type Rule } from '../../cloud/authorize.ts';

const ALPHA = { id: 'p-alpha', name: 'alpha' };
const BETA = { id: 'p-beta', name: 'beta' };

const caller = (over: Partial<Caller> = {}): Caller => ({
  userId: 'u-ann',
  user: 'ann',
  admin: false,
  tokenId: 't-1',
  project: null,
  readOnly: false,
  expiresAt: null,
  roles: { [ALPHA.id]: 'member', [BETA.id]: 'reader' },
  ...over,
});

const READ: Rule = { kind: 'project', needs: 'reader' };
const WRITE: Rule = { kind: 'project', needs: 'member' };
const ADMIN: Rule = { kind: 'admin', write: true };
const SELF: Rule = { kind: 'user', write: true };

/** The answer's code, or `ok`. */
const answer = (c: Caller, rule: Rule, target: Parameters<typeof authorizeCloud>[3]) => {
  const d = authorizeCloud(c, 'x.y', rule, target);
  return d.allowed ? 'ok' : d.code;
};

describe('the cloud’s authorisation rule', () => {
  it.each([
    ['a member acts in its project', caller(), WRITE, ALPHA, 'ok'],
    ['a reader reads', caller(), READ, BETA, 'ok'],
    ['a reader may not act, and is told so', caller(), WRITE, BETA, 'FORBIDDEN'],
    ['no role: the project is not there', caller({ roles: {} }), READ, ALPHA, 'NOT_FOUND'],
    [
      'a project that does not exist answers as one not seen',
      caller(),
      READ,
      { id: null, name: 'gamma' },
      'NOT_FOUND',
    ],
    ['a read-only token only reads', caller({ readOnly: true }), WRITE, ALPHA, 'FORBIDDEN'],
    ['a read-only token reads', caller({ readOnly: true }), READ, ALPHA, 'ok'],
    [
      'a token narrowed to alpha sees no beta',
      caller({ project: ALPHA.id }),
      READ,
      BETA,
      'NOT_FOUND',
    ],
    ['a token narrowed to alpha acts there', caller({ project: ALPHA.id }), WRITE, ALPHA, 'ok'],
    ['an admin acts in any project', caller({ admin: true, roles: {} }), WRITE, BETA, 'ok'],
    [
      'an admin’s read-only token only reads',
      caller({ admin: true, readOnly: true, roles: {} }),
      WRITE,
      BETA,
      'FORBIDDEN',
    ],
    [
      'an admin’s token narrowed to alpha sees no beta',
      caller({ admin: true, project: ALPHA.id }),
      READ,
      BETA,
      'NOT_FOUND',
    ],
  ] as const)('%s', (_, c, rule, project, want) => {
    expect(answer(c, rule, { project })).toBe(want);
  });

  it('keeps the cloud’s own procedures to admins with an unnarrowed, writable token', () => {
    expect(answer(caller(), ADMIN, {})).toBe('FORBIDDEN');
    expect(answer(caller({ admin: true }), ADMIN, {})).toBe('ok');
    expect(answer(caller({ admin: true, project: ALPHA.id }), ADMIN, {})).toBe('FORBIDDEN');
    expect(answer(caller({ admin: true, readOnly: true }), ADMIN, {})).toBe('FORBIDDEN');
    expect(
      answer(caller({ admin: true, readOnly: true }), { kind: 'admin', write: false }, {}),
    ).toBe('ok');
  });

  it('lets a user act on itself, and only an admin on another', () => {
    expect(answer(caller(), SELF, {})).toBe('ok');
    expect(answer(caller(), SELF, { userId: 'u-ann' })).toBe('ok');
    expect(answer(caller(), SELF, { userId: 'u-bob' })).toBe('FORBIDDEN');
    expect(answer(caller({ admin: true }), SELF, { userId: 'u-bob' })).toBe('ok');
    expect(answer(caller({ readOnly: true }), SELF, {})).toBe('FORBIDDEN');
    expect(answer(caller({ readOnly: true }), { kind: 'user', write: false }, {})).toBe('ok');
  });

  it('never lets a project rule pass without a project', () => {
    expect(answer(caller({ admin: true }), READ, {})).toBe('FORBIDDEN');
  });
});
