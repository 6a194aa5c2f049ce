import { DriverError, type Driver, type DriverFactory } from '../../drivers/index.ts';

type Operation = Exclude<keyof Driver, 'close'>;

/**
 * The real driver with injected faults: a chosen operation fails as a hypervisor would fail
 * it, for a chosen VM. Everything else reaches libvirt untouched.
 */
export function faultyDriverFactory(
  real: DriverFactory,
  faults: Partial<Record<Operation, (vmName: string) => DriverError | null>>,
): DriverFactory {
  return (host) => {
    const driver = real(host);
    const check = (op: Operation, name: string) => {
      const fault = faults[op]?.(name);
      if (fault) throw fault;
    };
    return {
      status: () => driver.status(),
      info: (name) => driver.info(name),
      define: async (spec) => {
        check('define', spec.name);
        await driver.define(spec);
      },
      start: async (name) => {
        check('start', name);
        await driver.start(name);
      },
      stop: (name) => driver.stop(name),
      undefine: (spec) => driver.undefine(spec),
      close: () => driver.close(),
    };
  };
}

export const rejected = (message: string) => new DriverError('rejected', message);
