import { constants as C, type Connection, type Domain } from '../../native/libvirt/index.ts';
import {
  DriverError,
  type DomainInfo,
  type DomainSpec,
  type MigrateOptions,
  type MigrateResult,
  type ProgressOptions,
} from '../driver.ts';
import { desiredStateOf } from './domain-xml.ts';
import {
  describe,
  isActive,
  lookup,
  powerOff,
  powerOn,
  undefineDomain,
  withDomain,
} from './domains.ts';
import { hasCode } from './errors.ts';

const LIVE_FLAGS = C.VIR_MIGRATE_LIVE | C.VIR_MIGRATE_PERSIST_DEST | C.VIR_MIGRATE_UNDEFINE_SOURCE;
/** libvirt copies the disks that are not on shared storage as it migrates (over NBD). */
const WITH_DISKS = LIVE_FLAGS | C.VIR_MIGRATE_NON_SHARED_DISK;
const CANNOT_LIVE = [
  C.VIR_ERR_NO_SUPPORT,
  C.VIR_ERR_OPERATION_UNSUPPORTED,
  C.VIR_ERR_ARGUMENT_UNSUPPORTED,
  C.VIR_ERR_MIGRATE_UNSAFE,
];

export interface MigrationContext {
  source: Connection;
  target: Connection;
  spec: DomainSpec;
  /** The domain XML to define on the target, recording the state it must end in. */
  targetXml(desired: 'running' | 'stopped'): string;
  options: MigrateOptions;
  /**
   * How the VM's disks move: `none` (no volumes, or all on shared storage), `copy` (each local
   * volume copied to the fresh one provisioned on the target), `mixed` (some of each: libvirt
   * could copy only all of them live, so such a VM moves cold).
   */
  disks: 'none' | 'copy' | 'mixed';
  /** Copies the local volumes to the target's, checked, while both domains are off. */
  copyDisks(options: ProgressOptions): Promise<void>;
}

/**
 * Live where libvirt can, otherwise cold: define on the target, power off the source, start
 * the target if the guest was running, undefine the source. Safe to retry from any point: the
 * target's definition records whether the guest must run there, because once the source is
 * powered off nothing else remembers it.
 */
export async function migrateDomain(ctx: MigrationContext): Promise<MigrateResult> {
  const { spec, options } = ctx;
  const src = await lookup(ctx.source, spec.name);
  return withDomain(src, async () => {
    const tgt = await lookup(ctx.target, spec.name);
    return withDomain(tgt, async () => {
      const tgtInfo = tgt && (await describe(tgt));
      if (tgtInfo && tgtInfo.vagothId !== spec.id) {
        throw new DriverError(
          'not-ours',
          `migrate ${spec.name}: the target has another domain of that name`,
        );
      }
      if (!src) return finishEarlierAttempt(ctx, tgt, tgtInfo);
      const srcInfo = await describe(src);
      if (srcInfo.vagothId !== spec.id) {
        throw new DriverError(
          'not-ours',
          `migrate ${spec.name}: the domain was not created by vagoth for this VM`,
        );
      }
      const running = isActive(srcInfo.state);
      let note: string | undefined;
      if (running && options.live !== false) {
        const live = await tryLive(ctx, src);
        if (typeof live !== 'string') return live;
        note = live;
      } else if (options.liveOnly) {
        throw new DriverError(
          'rejected',
          `migrate ${spec.name}: only a running domain migrates live`,
        );
      }
      const halfDone = tgt !== null && desiredStateOf(await tgt.getXMLDesc()) === 'running';
      const moved = await cold(ctx, src, running || halfDone);
      return note === undefined ? moved : { ...moved, note };
    });
  });
}

/** Moved live, or why not (then the move goes on cold). */
async function tryLive(ctx: MigrationContext, src: Domain): Promise<MigrateResult | string> {
  if (ctx.disks === 'mixed') {
    if (ctx.options.liveOnly) {
      throw new DriverError('rejected', `migrate ${ctx.spec.name}: disks both local and shared`);
    }
    return 'not live: some disks are local and some shared, and libvirt copies all or none';
  }
  ctx.options.onProgress?.({ step: 'migrate live', done: 0, total: 1 });
  try {
    (await src.migrate(ctx.target, ctx.disks === 'copy' ? WITH_DISKS : LIVE_FLAGS)).free();
  } catch (err) {
    if (ctx.options.liveOnly || !hasCode(err, ...CANNOT_LIVE)) throw err;
    const what = ctx.disks === 'copy' ? 'live with a copy of its disks' : 'live';
    return `not live: the hosts cannot migrate ${what} (libvirt error ${err.code}); moved cold`;
  }
  ctx.options.onProgress?.({ step: 'migrate live', done: 1, total: 1 });
  return { live: true };
}

async function cold(ctx: MigrationContext, src: Domain, running: boolean): Promise<MigrateResult> {
  // An attempt that goes on with a copy reports nothing before it: its first heartbeat, passed
  // at once, keeps the copy's offset rather than a step that would start the copy over.
  const resumingCopy = ctx.options.resumeFrom?.volume !== undefined;
  const report = (step: string, done: number) => {
    if (resumingCopy && done < 2) return;
    ctx.options.onProgress?.({ step: `migrate cold: ${step}`, done, total: 4 });
  };
  report('define on target', 0);
  const defined = await ctx.target.defineDomainXML(ctx.targetXml(running ? 'running' : 'stopped'));
  await withDomain(defined, async () => {
    report('power off source', 1);
    await powerOff(src);
    ctx.options.signal?.throwIfAborted();
    // Both domains are off: the disks hold still while they are copied and checked. Only a
    // copy whose digests agree gets past here, to start the target and undefine the source.
    await ctx.copyDisks(ctx.options);
    ctx.options.signal?.throwIfAborted();
    report('start on target', 2);
    if (running) await powerOn(defined);
  });
  report('undefine source', 3);
  await undefineDomain(src);
  report('done', 4);
  return { live: false };
}

/** The source is gone: an earlier attempt got past undefining it, maybe not past starting. */
async function finishEarlierAttempt(
  ctx: MigrationContext,
  tgt: Domain | null,
  tgtInfo: DomainInfo | null,
): Promise<MigrateResult> {
  if (!tgt || !tgtInfo) {
    throw new DriverError('not-found', `migrate ${ctx.spec.name}: no such domain on either host`);
  }
  if (!isActive(tgtInfo.state) && desiredStateOf(await tgt.getXMLDesc()) === 'running') {
    await powerOn(tgt);
  }
  return { live: false };
}
