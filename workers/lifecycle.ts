type Stop = () => Promise<unknown>;

// A stop that hangs (a service that no longer answers) must not keep the process alive.
const STOP_DEADLINE_MS = 30_000;

/**
 * Runs `start`, then waits for SIGINT/SIGTERM and calls every registered stop in reverse
 * order. A failed start stops what had started, prints the error and exits non-zero. Stopping
 * for longer than the deadline exits at once.
 */
export async function runUntilSignal(
  start: (onStop: (stop: Stop) => void) => Promise<void>,
): Promise<void> {
  const stops: Stop[] = [];
  let stopping = false;
  const stopAll = async (code: number) => {
    // Ctrl-C reaches every process of the group, and wrappers (npm, tsx) relay it again:
    // repeats are the same request.
    if (stopping) return;
    stopping = true;
    setTimeout(() => {
      console.error(`still stopping after ${STOP_DEADLINE_MS / 1000} s; exiting`);
      process.exit(1);
    }, STOP_DEADLINE_MS).unref();
    for (const stop of stops.reverse()) {
      await stop().catch((err: unknown) => console.error('while stopping:', err));
    }
    process.exit(code);
  };
  process.on('SIGINT', () => void stopAll(0));
  process.on('SIGTERM', () => void stopAll(0));
  try {
    await start((stop) => stops.push(stop));
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    await stopAll(1);
  }
}

/** The production entry points run against services they are given, never embedded ones. */
export function requireSetting(name: string, value: string | undefined): string {
  if (value === undefined)
    throw new Error(`${name} must be set for this command (npm start runs its own instead)`);
  return value;
}
