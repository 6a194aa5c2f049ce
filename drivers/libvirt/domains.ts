import { setTimeout as sleep } from 'node:timers/promises';
import { constants as C, type Connection, type Domain } from '../../native/libvirt/index.ts';
import { DriverError, type DomainInfo, type DomainState, type ShutdownOptions } from '../driver.ts';
import { macsOf, vagothIdOf } from './domain-xml.ts';
import { hasCode } from './errors.ts';

const STATES = new Map<number, DomainState>([
  [C.VIR_DOMAIN_RUNNING, 'running'],
  [C.VIR_DOMAIN_BLOCKED, 'running'],
  [C.VIR_DOMAIN_PAUSED, 'paused'],
  [C.VIR_DOMAIN_PMSUSPENDED, 'paused'],
  [C.VIR_DOMAIN_SHUTDOWN, 'shutting-down'],
  [C.VIR_DOMAIN_SHUTOFF, 'stopped'],
  [C.VIR_DOMAIN_CRASHED, 'crashed'],
]);

export const stateName = (state: number): DomainState => STATES.get(state) ?? 'other';

/** Whether a domain in this state holds a running (or suspended) guest. */
export const isActive = (state: DomainState): boolean => state !== 'stopped' && state !== 'crashed';

/** The domain of that name, or null when the host has none. */
export async function lookup(conn: Connection, name: string): Promise<Domain | null> {
  try {
    return await conn.lookupDomainByName(name);
  } catch (err) {
    if (hasCode(err, C.VIR_ERR_NO_DOMAIN)) return null;
    throw err;
  }
}

export async function describe(domain: Domain): Promise<DomainInfo> {
  const [info, xml] = await Promise.all([domain.getInfo(), domain.getXMLDesc()]);
  return {
    name: domain.name,
    state: stateName(info.state),
    vagothId: vagothIdOf(xml),
    vcpus: info.vcpus,
    memoryMiB: Math.floor(info.maxMemKiB / 1024),
    macs: macsOf(xml),
  };
}

export async function stateOf(domain: Domain): Promise<DomainState> {
  return stateName((await domain.getState()).state);
}

/**
 * Runs a state change and treats its failure as success when the domain ended up in the state
 * wanted anyway: libvirt's error for "already running" differs between drivers (the test
 * driver's is an internal error), the state it reports does not.
 */
export async function settle(
  domain: Domain,
  change: () => Promise<void>,
  done: (state: DomainState) => boolean,
): Promise<void> {
  try {
    await change();
  } catch (err) {
    const now = await stateOf(domain).catch(() => null);
    if (now !== null && done(now)) return;
    throw err;
  }
}

/** Powers a domain off; already off is success. */
export function powerOff(domain: Domain): Promise<void> {
  return settle(
    domain,
    () => domain.destroy(),
    (s) => !isActive(s),
  );
}

/** Boots a domain; already running is success. */
export function powerOn(domain: Domain): Promise<void> {
  return settle(
    domain,
    () => domain.create(),
    (s) => s === 'running',
  );
}

/**
 * Asks the guest to power off (ACPI) and polls until it has, backing off up to `pollMs`; then
 * powers it off when `force`, or fails with `timeout`. Already off is success.
 */
// A guest that was not yet listening for the power button misses a press (a booting guest,
// an ACPI daemon not started yet): press again this often until the deadline, as Nova does.
const REPRESS_MS = 3000;

export async function shutDown(
  domain: Domain,
  options: ShutdownOptions & { pollMs: number },
): Promise<void> {
  if (!isActive(await stateOf(domain))) return;
  const press = () =>
    settle(
      domain,
      () => domain.shutdown(),
      (s) => !isActive(s),
    );
  await press();
  const deadline = Date.now() + options.timeoutMs;
  let pressed = Date.now();
  for (
    let pause = 25;
    isActive(await stateOf(domain));
    pause = Math.min(pause * 2, options.pollMs)
  ) {
    const left = deadline - Date.now();
    if (left <= 0) {
      if (options.force) return powerOff(domain);
      throw new DriverError(
        'timeout',
        `shutdown ${domain.name}: the guest was still running after ${options.timeoutMs} ms`,
      );
    }
    if (Date.now() - pressed >= REPRESS_MS) {
      await press();
      pressed = Date.now();
    }
    await sleep(Math.min(pause, left));
  }
}

/** What undefine removes with the domain: its managed save image and snapshot metadata. */
export const UNDEFINE_FLAGS =
  C.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | C.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA;

export async function undefineDomain(domain: Domain): Promise<void> {
  try {
    await domain.undefine(UNDEFINE_FLAGS);
  } catch (err) {
    if (!hasCode(err, C.VIR_ERR_NO_DOMAIN)) throw err;
  }
}

/** Runs `fn` with a domain and frees the domain's reference afterwards. */
export async function withDomain<D extends Domain | null, R>(
  domain: D,
  fn: (domain: D) => Promise<R>,
): Promise<R> {
  try {
    return await fn(domain);
  } finally {
    domain?.free();
  }
}
