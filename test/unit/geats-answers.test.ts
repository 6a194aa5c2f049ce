import { describe, expect, it } from 'vitest';
import { bounded, DriverError } from '../../drivers/driver.ts';
import { readAnswer, type AgentOutput } from '../../drivers/geats/protocol.ts';

const SECRET = 'root:x:0:0:root:/root:/bin/bash DATABASE_URL=postgres://vagoth:pw@db/vagoth';

const run = (o: Partial<AgentOutput>): AgentOutput => ({
  stdout: '',
  stderr: '',
  exitCode: 0,
  signal: null,
  ...o,
});

function failure(out: AgentOutput): DriverError {
  try {
    readAnswer('status on geats:///a', out);
  } catch (err) {
    expect(err).toBeInstanceOf(DriverError);
    return err as DriverError;
  }
  throw new Error('readAnswer accepted it');
}

describe('readAnswer tells callers what happened in vagoth’s words', () => {
  it.each([
    [
      'a non-zero exit',
      run({ exitCode: 1, stderr: SECRET, stdout: SECRET }),
      'status on geats:///a: geats agent exited with status 1',
    ],
    [
      'a death by signal',
      run({ exitCode: null, signal: 'SIGKILL', stderr: SECRET }),
      'status on geats:///a: geats agent was killed by SIGKILL',
    ],
    [
      'an answer that is not geats’s',
      run({ stdout: `uid=0(root) gid=0(root)\n${SECRET}` }),
      "status on geats:///a: the geats agent's answer is not a geats answer",
    ],
    [
      'an error code that is not a name',
      run({ stdout: JSON.stringify({ success: false, errorcode: SECRET, message: 'no' }) }),
      'status on geats:///a: UnknownError: no',
    ],
  ])('%s', (_, out, message) => {
    const err = failure(out);
    expect(err.message).toBe(message);
    // What the agent printed is kept for the worker's log only.
    expect(err.detail).toContain('root:x:0:0');
  });

  it('keeps a geats error name and a bounded, one-line message', () => {
    const message = `line one\nline two ${'x'.repeat(500)}`;
    const err = failure(
      run({ stdout: JSON.stringify({ success: false, errorcode: 'KeyError', message }) }),
    );
    expect([err.kind, err.code]).toEqual(['not-found', 'KeyError']);
    expect(err.message).toMatch(/^status on geats:\/\/\/a: KeyError: line one line two x+\.\.\.$/);
    expect(err.message.length).toBeLessThan(260);
  });
});

describe('bounded', () => {
  it.each([
    ['short', 'short'],
    ['two\nlines\r\n', 'two lines'],
    ['\u001b[31mred\u001b[0m', '[31mred [0m'],
    ['y'.repeat(300), `${'y'.repeat(197)}...`],
  ])('%j -> %j', (text, expected) => {
    expect(bounded(text)).toBe(expected);
  });
});
