import type { HostAddress } from '../registry/types.ts';
import type { Driver, DriverFactory } from './driver.ts';

/** One driver (one connection) per host, opened on first use and reused. */
export class DriverPool {
  readonly #drivers = new Map<string, { uri: string; driver: Driver }>();

  constructor(private readonly factory: DriverFactory) {}

  get(host: HostAddress): Driver {
    const known = this.#drivers.get(host.name);
    if (known && known.uri === host.uri) return known.driver;
    if (known) void known.driver.close().catch(() => {});
    const driver = this.factory(host);
    this.#drivers.set(host.name, { uri: host.uri, driver });
    return driver;
  }

  async close(): Promise<void> {
    const drivers = [...this.#drivers.values()];
    this.#drivers.clear();
    await Promise.allSettled(drivers.map((d) => d.driver.close()));
  }
}
