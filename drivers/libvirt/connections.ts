import { open, type Connection } from '../../native/libvirt/index.ts';
import { DriverError } from '../driver.ts';
import { classify } from './errors.ts';

interface Entry {
  leases: number;
  connection: Promise<Connection> | undefined;
}

/** A driver's hold on the connection to one URI. */
export interface ConnectionLease {
  readonly uri: string;
  /** The open connection, opened (again) when there is none. */
  get(): Promise<Connection>;
  /** Forget `connection` because it failed as unreachable; the next get() reopens. */
  drop(connection: Connection): void;
  /** Idempotent; the connection closes with the last lease. */
  release(): Promise<void>;
}

/**
 * Which of a host's connections: `main` carries every operation; `poll` carries only the
 * monitor's status calls. libvirtd serves at most five calls at once from one client
 * (max_client_requests), so five long calls (wipes, clones, migrations) on `main` would hold
 * a poll in the daemon's queue until one of them ended; on a connection of its own it is
 * answered at once.
 */
export type ConnectionChannel = 'main' | 'poll';

/**
 * One libvirt connection per URI and channel in this process, shared by every driver holding
 * a lease on it. Sharing matters beyond economy: each connection to a `test:///<file>` URI is a
 * separate simulated hypervisor, so a migration to a host must use the connection its own
 * driver uses (and such a host is only ever reached on `main`).
 */
export class ConnectionRegistry {
  readonly #entries = new Map<string, Entry>();

  lease(uri: string, channel: ConnectionChannel = 'main'): ConnectionLease {
    const key = `${channel} ${uri}`;
    const entry = this.#entries.get(key) ?? { leases: 0, connection: undefined };
    this.#entries.set(key, entry);
    entry.leases++;
    let released = false;
    return {
      uri,
      get: () => this.#connect(uri, entry),
      drop: (connection) => this.#drop(entry, connection),
      release: async () => {
        if (released) return;
        released = true;
        if (--entry.leases > 0) return;
        if (this.#entries.get(key) === entry) this.#entries.delete(key);
        const connection = entry.connection;
        entry.connection = undefined;
        const open = await connection?.catch(() => null);
        await open?.close();
      },
    };
  }

  #connect(uri: string, entry: Entry): Promise<Connection> {
    entry.connection ??= open(uri).catch((err: unknown) => {
      entry.connection = undefined;
      const cause = classify(err, `cannot connect to ${uri}`);
      // Whatever stops a connection from opening, a later attempt may get through. What
      // libvirt said stays in the log: opening a URI may have read a file (test:///<file>).
      const code = cause.code === undefined ? '' : ` (code ${cause.code})`;
      throw new DriverError(
        'unreachable',
        `cannot connect to ${uri}: libvirt could not open the connection${code}`,
        { cause: err, code: cause.code, detail: cause.detail ?? cause.message },
      );
    });
    return entry.connection;
  }

  #drop(entry: Entry, connection: Connection): void {
    const current = entry.connection;
    if (!current) return;
    void current.then(
      (open) => {
        if (open !== connection || entry.connection !== current) return;
        entry.connection = undefined;
        void open.close().catch(() => {});
      },
      () => {},
    );
  }
}

/** The registry every libvirt driver of this process uses. */
export const connections = new ConnectionRegistry();
