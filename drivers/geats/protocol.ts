import { z } from 'zod';
import { bounded, DriverError, type DriverErrorKind } from '../driver.ts';

export type GeatsAction =
  | 'status'
  | 'info'
  | 'define'
  | 'provision'
  | 'start'
  | 'stop'
  | 'shutdown'
  | 'reboot'
  | 'undefine'
  | 'deprovision'
  | 'migrate';

/** `data` of a request; geats reads `vm_name`, `definition` and `vm_destination` only. */
export interface GeatsRequestData {
  vm_name?: string;
  definition?: Record<string, unknown>;
  vm_destination?: string;
}

/** What one run of the agent left behind, whichever way it ran. */
export interface AgentOutput {
  stdout: string;
  stderr: string;
  /** Null when the agent was killed by a signal or its channel closed without a status. */
  exitCode: number | null;
  signal: string | null;
}

/**
 * Geats answers with the name of the exception it raised (geats/exceptions.py, and the
 * KeyError of Manager.get_vm for an unknown VM); the agent adds MissingData, InvalidData and
 * UnknownAction for requests it cannot read, as mcagent.py's exit statuses 2-4 do.
 * Any other code is a refusal: trying again will not change the answer.
 */
const KINDS: Record<string, DriverErrorKind> = {
  KeyError: 'not-found',
  InvalidVMDefinition: 'rejected',
  UnsupportedVMType: 'rejected',
  UnsupportedStorageType: 'rejected',
  AlreadyExistsException: 'rejected',
  VMException: 'rejected',
  VMLockedException: 'rejected',
  MissingData: 'rejected',
  InvalidData: 'rejected',
  // Another operation holds the VM's lock: it will be free again.
  FailedToAcquireLockException: 'timeout',
  NotImplementedError: 'unsupported',
  UnknownAction: 'unsupported',
};

export function errorKind(errorcode: string): DriverErrorKind {
  return Object.hasOwn(KINDS, errorcode) ? KINDS[errorcode]! : 'rejected';
}

const answerSchema = z.discriminatedUnion('success', [
  z.object({ success: z.literal(true), data: z.unknown().optional() }),
  z.object({
    success: z.literal(false),
    errorcode: z.union([z.string(), z.number()]).optional(),
    message: z.string().optional(),
  }),
]);

const tail = (text: string) => text.trim().split('\n').slice(-20).join('\n').slice(-4000);
// The agent's own words reach callers only as a geats error name and a short message.
const ERRORCODE = /^[A-Za-z][A-Za-z0-9_.]{0,63}$/;

/**
 * The agent's answer as the protocol defines it: a non-zero exit, a death by signal or
 * anything but one answer document on stdout means the agent crashed.
 */
export function readAnswer(what: string, out: AgentOutput): unknown {
  if (out.exitCode === null && out.signal === null) {
    throw new DriverError(
      'unreachable',
      `${what}: the connection closed before the agent answered`,
    );
  }
  if (out.exitCode !== 0) {
    const status = out.signal
      ? `was killed by ${out.signal}`
      : `exited with status ${out.exitCode}`;
    throw new DriverError('rejected', `${what}: geats agent ${status}`, {
      code: 'AgentCrashed',
      detail: tail(out.stderr),
    });
  }
  let parsed: z.infer<typeof answerSchema>;
  try {
    parsed = answerSchema.parse(JSON.parse(out.stdout));
  } catch {
    throw new DriverError('rejected', `${what}: the geats agent's answer is not a geats answer`, {
      code: 'BadAnswer',
      detail: `${tail(out.stdout)}\n${tail(out.stderr)}`,
    });
  }
  if (parsed.success) return parsed.data ?? null;
  const given = String(parsed.errorcode ?? 'undefined');
  const code = ERRORCODE.test(given) ? given : 'UnknownError';
  const message = bounded(parsed.message ?? 'check logs');
  throw new DriverError(errorKind(code), `${what}: ${code}: ${message}`, {
    code,
    detail: `${given}: ${parsed.message ?? ''}`,
  });
}

/** One request, as the agent reads it from stdin. */
export function encodeRequest(action: GeatsAction, data: GeatsRequestData): string {
  return `${JSON.stringify({ action, data })}\n`;
}
