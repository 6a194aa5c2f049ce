import { withActor, type ActorOptions, type TransactionSql } from '../../registry/context.ts';
import type { Queryable } from '../../registry/db.ts';
import { listEvents } from '../../registry/events.ts';
import { setDefinition, mergeMetadata, setTags } from '../../registry/node-data.ts';
import { changeKeys } from '../../registry/node-keys.ts';
import { clearParent, setParent } from '../../registry/node-tree.ts';
import {
  createNode,
  deleteNode,
  findNodes,
  getNode,
  renameNode,
  type NodeLookup,
} from '../../registry/nodes.ts';
import type { Context } from '../context.ts';
import {
  nodeByRefInput,
  nodeChangeKeysInput,
  nodeCreateInput,
  nodeDefinitionInput,
  nodeEventsInput,
  nodeGetInput,
  nodeListInput,
  nodeMetadataInput,
  nodeRenameInput,
  nodeSetParentInput,
  nodeTagsInput,
} from '../schemas.ts';
import { procedure, router } from '../trpc.ts';

// Every change made through the API is logged as the API's; it runs no workflow. VMs, hosts
// and migration holds are their lifecycles': the registry refuses to change them here (but
// for the tags of VMs and hosts), as LifecycleOwned (FORBIDDEN).
const API: ActorOptions = { actor: 'api', operation: null };

function write<T>(ctx: Context, fn: (tx: TransactionSql) => Promise<T>): Promise<T> {
  return withActor(ctx.sql, API, fn);
}

/** The schemas let through exactly one of id and name. */
function lookup(ref: { id?: string | undefined; name?: string | undefined }): NodeLookup {
  return ref.id !== undefined ? { id: ref.id } : { name: ref.name ?? '' };
}

async function idOf(
  sql: Queryable,
  ref: { id?: string | undefined; name?: string | undefined },
): Promise<string> {
  return ref.id ?? (await getNode(sql, lookup(ref))).id;
}

export const nodesRouter = router({
  /** Records a node and claims its name and keys, all or nothing (CONFLICT names the holder). */
  create: procedure.input(nodeCreateInput).mutation(({ ctx, input }) =>
    write(ctx, async (tx) => {
      const parent = input.parent ? await idOf(tx, input.parent) : null;
      return createNode(tx, { ...input, parent });
    }),
  ),

  get: procedure.input(nodeGetInput).query(({ ctx, input }) => {
    const by: NodeLookup = input.key !== undefined ? { key: input.key } : lookup(input);
    return getNode(ctx.sql, by);
  }),

  list: procedure.input(nodeListInput).query(async ({ ctx, input }) => {
    const parent = input.parent ? await idOf(ctx.sql, input.parent) : undefined;
    return findNodes(ctx.sql, { ...input, parent });
  }),

  rename: procedure
    .input(nodeRenameInput)
    .mutation(({ ctx, input }) =>
      write(ctx, async (tx) => renameNode(tx, await idOf(tx, input), input.newName)),
    ),

  setParent: procedure
    .input(nodeSetParentInput)
    .mutation(({ ctx, input }) =>
      write(ctx, async (tx) => setParent(tx, await idOf(tx, input), await idOf(tx, input.parent))),
    ),

  clearParent: procedure
    .input(nodeByRefInput)
    .mutation(({ ctx, input }) => write(ctx, async (tx) => clearParent(tx, await idOf(tx, input)))),

  updateMetadata: procedure
    .input(nodeMetadataInput)
    .mutation(({ ctx, input }) =>
      write(ctx, async (tx) => mergeMetadata(tx, await idOf(tx, input), input.patch)),
    ),

  updateDefinition: procedure
    .input(nodeDefinitionInput)
    .mutation(({ ctx, input }) =>
      write(ctx, async (tx) => setDefinition(tx, await idOf(tx, input), input.definition)),
    ),

  updateTags: procedure
    .input(nodeTagsInput)
    .mutation(({ ctx, input }) =>
      write(ctx, async (tx) => setTags(tx, await idOf(tx, input), input.patch)),
    ),

  /** Releases and claims keys in one transaction: a conflicting claim undoes the releases. */
  changeKeys: procedure.input(nodeChangeKeysInput).mutation(({ ctx, input }) =>
    write(ctx, async (tx) => {
      const id = await idOf(tx, input);
      await changeKeys(tx, id, { claim: input.claim, release: input.release });
      return getNode(tx, { id });
    }),
  ),

  /** Removes a node that has no parent and no children; returns it as it was. */
  delete: procedure
    .input(nodeByRefInput)
    .mutation(({ ctx, input }) => write(ctx, async (tx) => deleteNode(tx, await idOf(tx, input)))),

  /** The node's history, newest first; by id it outlives the node. */
  events: procedure.input(nodeEventsInput).query(async ({ ctx, input }) => {
    const id = await idOf(ctx.sql, input);
    return listEvents(ctx.sql, id, { cursor: input.cursor, limit: input.limit });
  }),
});
