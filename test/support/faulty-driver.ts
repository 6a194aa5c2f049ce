import { DriverError, type Driver, type DriverFactory } from '../../drivers/index.ts';

type Operation = Exclude<keyof Driver, 'close' | 'volumesFor'>;

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
      info: async (name) => {
        check('info', name);
        return driver.info(name);
      },
      volumesFor: (spec) => driver.volumesFor(spec),
      provision: async (spec, options) => {
        check('provision', spec.name);
        return driver.provision(spec, options);
      },
      define: async (spec) => {
        check('define', spec.name);
        await driver.define(spec);
      },
      start: async (name) => {
        check('start', name);
        return driver.start(name);
      },
      stop: async (name) => {
        check('stop', name);
        await driver.stop(name);
      },
      shutdown: async (name, options) => {
        check('shutdown', name);
        await driver.shutdown(name, options);
      },
      reboot: async (name) => {
        check('reboot', name);
        await driver.reboot(name);
      },
      migrate: async (spec, target, options) => {
        check('migrate', spec.name);
        return driver.migrate(spec, target, options);
      },
      undefine: async (spec) => {
        check('undefine', spec.name);
        await driver.undefine(spec);
      },
      deprovision: async (spec, options) => {
        check('deprovision', spec.name);
        await driver.deprovision(spec, options);
      },
      close: () => driver.close(),
    };
  };
}

export const rejected = (message: string) => new DriverError('rejected', message);
