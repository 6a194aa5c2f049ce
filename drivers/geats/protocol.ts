import { z } from 'zod';
import { DriverError, type DriverErrorKind } from '../driver.ts';

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

const tail = (text: string) => text.trim().split('\n').slice(-3).join(' | ').slice(0, 500);

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
    const status = out.signal ? `was killed by ${out.signal}` : `exited with ${out.exitCode}`;
    const stderr = tail(out.stderr);
    throw new DriverError(
      'rejected',
      `${what}: the agent ${status}${stderr ? `: ${stderr}` : ''}`,
      {
        code: 'AgentCrashed',
      },
    );
  }
  let parsed: z.infer<typeof answerSchema>;
  try {
    parsed = answerSchema.parse(JSON.parse(out.stdout));
  } catch (err) {
    const shown = tail(out.stdout) || '(nothing)';
    throw new DriverError(
      'rejected',
      `${what}: the agent's answer is not a geats answer: ${shown}`,
      {
        code: 'BadAnswer',
        cause: err,
      },
    );
  }
  if (parsed.success) return parsed.data ?? null;
  const code = String(parsed.errorcode ?? 'undefined');
  throw new DriverError(errorKind(code), `${what}: ${code}: ${parsed.message ?? 'check logs'}`, {
    code,
  });
}

/** One request, as the agent reads it from stdin. */
export function encodeRequest(action: GeatsAction, data: GeatsRequestData): string {
  return `${JSON.stringify({ action, data })}\n`;
}
