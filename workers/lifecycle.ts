type Stop = () => Promise<unknown>;

/**
 * Runs `start`, then waits for SIGINT/SIGTERM and calls every registered stop in reverse
 * order. A failed start stops what had started, prints the error and exits non-zero.
 */
export async function runUntilSignal(
  start: (onStop: (stop: Stop) => void) => Promise<void>,
): Promise<void> {
  const stops: Stop[] = [];
  let stopping = false;
  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    for (const stop of stops.reverse()) {
      await stop().catch((err: unknown) => console.error('while stopping:', err));
    }
    process.exit(code);
  };
  process.once('SIGINT', () => void stopAll(0));
  process.once('SIGTERM', () => void stopAll(0));
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
