import { inBatches } from '../common/batches.ts';
import type { CloudDriver, CloudInstance } from './clouds/driver.ts';
import { CloudRefusedError, CloudUnreachableError } from './errors.ts';
import type { Observed, Seen } from './plan.ts';
import type { Health, Prober } from './probe.ts';
import type { Member } from './reconcile-step.ts';

/** A cloud a step acts in: its driver (with the service's token there) and the project. */
export interface StepCloud {
  driver: CloudDriver;
  project: string;
}

/**
 * The clouds a step acts in, by name: the service's own under null, the others its members or
 * placements are in under theirs. One missing (no token kept for it, no longer allowed by the
 * operator) is one the step cannot reach.
 */
export type StepClouds = ReadonlyMap<string | null, StepCloud>;

/** A service in its own cloud only. */
export const ownCloud = (driver: CloudDriver, project: string): StepClouds =>
  new Map([[null, { driver, project }]]);

/** An instance's state as the cloud tells it, in the plan's terms. */
function seenAs(state: string): Seen {
  switch (state) {
    case 'running':
    case 'stopped':
    case 'failed':
    case 'missing':
    case 'unknown':
      return state;
    default:
      // creating, starting, pending, migrating, ...: on its way, not serving yet
      return 'pending';
  }
}

/** What each cloud listed of the service, or why another cloud could not be listed. */
export interface Listing {
  found: Map<string | null, Map<string, CloudInstance>>;
  /** Other clouds that did not answer (or could not be asked), with why. */
  silent: Map<string, string>;
}

/**
 * Lists the service's instances in every cloud in `used`, all at once. Its own cloud failing
 * fails the step, as it always did; another cloud failing (silent, refusing the service's
 * token, no token kept) leaves the others to go on: it is `silent`, and its members are seen
 * as `unknown`.
 */
export async function listClouds(
  clouds: StepClouds,
  used: ReadonlySet<string | null>,
  prefix: string,
): Promise<Listing> {
  const found = new Map<string | null, Map<string, CloudInstance>>();
  const silent = new Map<string, string>();
  await Promise.all(
    [...used].map(async (cloud) => {
      const at = clouds.get(cloud);
      if (cloud !== null && !at) {
        silent.set(
          cloud,
          'no token of the service is kept for it, it is not allowed, or its URL changed since ' +
            'the token was minted there',
        );
        return;
      }
      try {
        const list = await at!.driver.instances(at!.project, prefix);
        found.set(cloud, new Map(list.map((i) => [i.name, i] as const)));
      } catch (err) {
        if (cloud === null) throw err;
        if (!(err instanceof CloudUnreachableError || err instanceof CloudRefusedError)) throw err;
        silent.set(
          cloud,
          err instanceof CloudUnreachableError ? 'it did not answer' : `it refused: ${err.message}`,
        );
      }
    }),
  );
  return { found, silent };
}

/** At most this many health checks at once. */
const PROBES_AT_ONCE = 16;

/** The members as a step finds them in their clouds. */
export interface Observation {
  observed: Observed[];
  /** Each member as it goes on, by name (a step adds made ones, drops deleted ones). */
  known: Map<string, Member>;
  /**
   * Members whose name another instance holds now (theirs went; someone made one again):
   * forgotten, never deleted, as that one is not the service's.
   */
  notOurs: Set<string>;
  unhealthy: string[];
}

/**
 * Each member as its cloud tells it (`unknown` where its cloud is silent), probed where it
 * runs and the service has a health check.
 */
export async function observeMembers(
  listing: Listing,
  members: readonly Member[],
  health: Health | null | undefined,
  now: Date,
  probe: Prober,
  progress: () => void,
): Promise<Observation> {
  const unhealthy: string[] = [];
  const known = new Map<string, Member>();
  const notOurs = new Set<string>();
  const observed = await inBatches(
    members,
    PROBES_AT_ONCE,
    async (m): Promise<Observed> => {
      const cloud = m.cloud ?? null;
      const found = listing.found.get(cloud);
      const listed = found?.get(m.name);
      const theirs = listed && m.instanceId && listed.id !== m.instanceId;
      if (theirs) notOurs.add(m.name);
      const instance = theirs ? undefined : listed;
      const state = !found ? 'unknown' : instance ? seenAs(instance.state) : 'missing';
      let failedChecks = 0;
      let healthy = m.healthy ?? false;
      if (health && instance && state === 'running') {
        const address = instance.addresses.find((a) => a.ip !== undefined)?.ip ?? '';
        const result = await probe(health, address);
        if (result.ok) healthy = true;
        else {
          // Counted once it has passed one (a slow boot is not a failure), and only when a
          // check was sent at all.
          if (healthy && !result.unprobeable) failedChecks = (m.failedChecks ?? 0) + 1;
          unhealthy.push(`${m.name}: ${result.why}`);
        }
      }
      const seen: Member = {
        ...m,
        cloud,
        placement: m.placement ?? null,
        unknownSince: state === 'unknown' ? (m.unknownSince ?? now) : null,
        // A silent cloud's member keeps its count: nothing was checked.
        failedChecks: found ? failedChecks : (m.failedChecks ?? 0),
        healthy,
        retiring: m.retiring ?? null,
        // One whose create's answer was lost is the instance of its name the cloud lists.
        instanceId: m.instanceId ?? instance?.id ?? null,
      };
      known.set(m.name, seen);
      return { ...seen, state };
    },
    progress,
  );
  return { observed, known, notOurs, unhealthy };
}
