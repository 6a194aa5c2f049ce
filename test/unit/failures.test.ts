import { ApplicationFailure } from '@temporalio/common';
import postgres from 'postgres';
import { describe, expect, it } from 'vitest';
import { toFailure } from '../../activities/failures.ts';
import { PERMANENT_FAILURES } from '../../common/vocabulary.ts';

function pgError(code: string): postgres.PostgresError {
  const err = new postgres.PostgresError(`error ${code}`);
  return Object.assign(err, { code, severity: 'ERROR' });
}

describe('an activity never retries what PostgreSQL will refuse again', () => {
  it.each([
    ['22P02', 'a lone surrogate in JSON', 'DataRejected'],
    ['22021', 'a NUL byte in text', 'DataRejected'],
    ['23505', 'an unmapped unique violation', 'RegistryFault'],
    ['23503', 'an unmapped foreign key', 'RegistryFault'],
    ['42601', 'a syntax error', 'RegistryFault'],
    ['42501', 'insufficient privilege', 'RegistryFault'],
    ['P0001', 'a RAISE without its own code', 'RegistryFault'],
  ])('%s (%s): non-retryable %s', (code, _what, type) => {
    const failure = toFailure(pgError(code));
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure).toMatchObject({ type, nonRetryable: true });
    expect(PERMANENT_FAILURES).toContain(type);
  });

  it.each([
    ['40001', 'a serialization failure'],
    ['40P01', 'a deadlock'],
    ['57P01', 'an admin shutdown'],
    ['08006', 'a connection failure'],
    ['53300', 'too many connections'],
  ])('%s (%s): rethrown as it is, so Temporal retries it', (code) => {
    const err = pgError(code);
    expect(toFailure(err)).toBe(err);
  });

  it('a dropped connection (not a server answer) is retried', () => {
    const err = Object.assign(new Error('write CONNECTION_CLOSED'), { code: 'CONNECTION_CLOSED' });
    expect(toFailure(err)).toBe(err);
  });
});
