import type { ServicesOut } from './services-client.ts';
import { progressText } from './services-views.ts';

type Detail = ServicesOut['services']['get'];

export interface WaitOptions {
  /** How long to wait before giving up (the command's failure). */
  timeoutMs: number;
  /** Where the progress line goes (standard error: standard output keeps the answer). */
  out: NodeJS.WriteStream;
  pollMs?: number;
}

/**
 * One line saying how far it got: rewritten in place on a terminal, else a line per change (a
 * log or a pipe gets no carriage returns).
 */
function progressLine(out: NodeJS.WriteStream) {
  let last: string | undefined;
  return {
    say(text: string) {
      if (text === last) return;
      out.write(out.isTTY ? `\r\u001b[2K${text}` : `${text}\n`);
      last = text;
    },
    end() {
      if (out.isTTY && last !== undefined) out.write('\n');
    },
  };
}

/** Asks until `done` answers something, saying each change of the line; gives up at the timeout. */
async function poll<T, R>(
  ask: () => Promise<T>,
  line: (seen: T) => string,
  done: (seen: T) => R | undefined,
  options: WaitOptions,
): Promise<R> {
  const progress = progressLine(options.out);
  const deadline = Date.now() + options.timeoutMs;
  try {
    for (;;) {
      const seen = await ask();
      progress.say(line(seen));
      const result = done(seen);
      if (result !== undefined) return result;
      if (Date.now() >= deadline) {
        throw new Error(`gave up waiting after ${options.timeoutMs / 1000} s: ${line(seen)}`);
      }
      await new Promise((r) => setTimeout(r, options.pollMs ?? 500));
    }
  } finally {
    progress.end();
  }
}

/**
 * Whether the service is as it declares: its last reconcile settled with as many instances
 * running as it asks, every one of them made from its template's revision. (A reconcile
 * recorded before a change fails this: it counted another number, or other revisions.)
 */
export function isSettled(s: Detail): boolean {
  const status = s.status;
  return (
    status.settled === true &&
    status.desired === s.replicas &&
    status.running === s.replicas &&
    s.members.length === s.replicas &&
    s.members.every((m) => m.revision === s.revision)
  );
}

/** Why waiting on the service would never end, if it would not. */
function stuck(s: Detail): string | null {
  const status = s.status;
  if (s.deletingAt !== null) return `${s.name} is being deleted`;
  if (s.paused) return `${s.name} is paused: nothing changes until it is resumed`;
  // Settled short of its replicas: the cloud refused the rest (quota, room), which only a
  // change elsewhere can give.
  if (
    status.settled === true &&
    status.desired === s.replicas &&
    (status.running ?? 0) < s.replicas &&
    (status.refused?.length ?? 0) > 0
  ) {
    return `${s.name} settled short of its replicas: ${progressText(s)}`;
  }
  return null;
}

/** The service once settled (see isSettled); a paused or refused one is the command's failure. */
export function untilSettled(get: () => Promise<Detail>, options: WaitOptions): Promise<Detail> {
  return poll(
    get,
    progressText,
    (s) => {
      if (isSettled(s)) return s;
      const why = stuck(s);
      if (why !== null) throw new Error(why);
      return undefined;
    },
    options,
  );
}

/** Until the service is gone: `get` answers null once it is not found. */
export async function untilGone(
  name: string,
  get: () => Promise<Detail | null>,
  options: WaitOptions,
): Promise<void> {
  await poll(
    get,
    (s) => (s === null ? `${name}: deleted` : progressText(s)),
    (s) => (s === null ? true : undefined),
    options,
  );
}
