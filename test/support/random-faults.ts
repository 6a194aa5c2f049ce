import {
  DriverError,
  type Driver,
  type DriverErrorKind,
  type DriverFactory,
} from '../../drivers/index.ts';

type Operation = Exclude<keyof Driver, 'close' | 'volumesFor'>;

export interface RandomFaultsOptions {
  /** Share of calls that fail, 0..1. */
  rate: number;
  kinds: DriverErrorKind[];
  /** Operations that may fail; all of them by default. */
  operations?: Operation[];
  /** Same seed, same faults in the same call order. */
  seed: number;
}

export interface RandomFaults {
  factory: DriverFactory;
  /** Off while a test sets up, on for the part under test. */
  armed: boolean;
  /** Faults injected so far, by `operation:kind:when`. */
  injected: Map<string, number>;
  /** Calls that could have failed (armed, of a faulty operation): the draws made. */
  calls: number;
}

// mulberry32: a tiny seeded generator, so a failing run can be replayed from its seed.
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The real drivers with a share of their calls failing at random, as hypervisors fail: a
 * retryable fault (unreachable, timeout) comes either before the call reaches the host or
 * after it landed with its answer lost, which is what tests idempotence; `rejected` and the
 * other final kinds come before, as a host refusing the request would.
 */
export function randomFaults(real: DriverFactory, options: RandomFaultsOptions): RandomFaults {
  const random = generator(options.seed);
  const ops = new Set<Operation>(
    options.operations ?? [
      'status',
      'info',
      'provision',
      'define',
      'start',
      'stop',
      'shutdown',
      'reboot',
      'migrate',
      'undefine',
      'deprovision',
    ],
  );
  const faults: RandomFaults = {
    factory: () => null as never,
    armed: false,
    injected: new Map(),
    calls: 0,
  };
  const draw = (op: Operation) => {
    if (!faults.armed || !ops.has(op)) return null;
    faults.calls++;
    if (random() >= options.rate) return null;
    const kind = options.kinds[Math.floor(random() * options.kinds.length)]!;
    const retryable = kind === 'unreachable' || kind === 'timeout';
    const when = retryable && random() < 0.5 ? 'after' : 'before';
    const key = `${op}:${kind}:${when}`;
    faults.injected.set(key, (faults.injected.get(key) ?? 0) + 1);
    return {
      when,
      error: new DriverError(kind, `injected ${kind} fault in ${op} (${when} the call)`),
    };
  };
  const wrap =
    <A extends unknown[], R>(op: Operation, call: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      const fault = draw(op);
      if (fault?.when === 'before') throw fault.error;
      const result = await call(...args);
      if (fault) throw fault.error;
      return result;
    };
  faults.factory = (host) => {
    const d = real(host);
    return {
      status: wrap('status', () => d.status()),
      info: wrap('info', (name) => d.info(name)),
      volumesFor: (spec) => d.volumesFor(spec),
      provision: wrap('provision', (spec, o) => d.provision(spec, o)),
      define: wrap('define', (spec) => d.define(spec)),
      start: wrap('start', (name) => d.start(name)),
      stop: wrap('stop', (name) => d.stop(name)),
      shutdown: wrap('shutdown', (name, o) => d.shutdown(name, o)),
      reboot: wrap('reboot', (name) => d.reboot(name)),
      migrate: wrap('migrate', (spec, target, o) => d.migrate(spec, target, o)),
      undefine: wrap('undefine', (spec) => d.undefine(spec)),
      deprovision: wrap('deprovision', (spec, o) => d.deprovision(spec, o)),
      close: () => d.close(),
    };
  };
  return faults;
}
