import { getCluster } from '../../store/clusters.ts';
import { grant, projectGrants, revoke, type GrantKind } from '../../store/grants.ts';
import { getProject } from '../../store/projects.ts';
import { grantChangeOut, grantsOut } from '../outputs.ts';
import { actorOf, projectOf, type AuthedContext } from '../context.ts';
import { byProject, grantInput } from '../schemas.ts';
import { ADMIN_WRITE, PROJECT_READ, procedure, router, routes } from '../trpc.ts';

/** A grant as its input names it: the cluster, the name there (under `network` or `image`). */
type GrantIn = { cluster: string; project?: string | undefined } & Record<string, unknown>;

/** Gives or takes back the grant the input names: one project's, or with none named, public. */
async function change(
  ctx: AuthedContext,
  kind: GrantKind,
  input: GrantIn,
  act: typeof grant | typeof revoke,
) {
  const cluster = await getCluster(ctx.sql, input.cluster);
  const project = input.project === undefined ? null : await getProject(ctx.sql, input.project);
  const name = input[kind] as string;
  await act(ctx.sql, actorOf(ctx), {
    kind,
    clusterId: cluster.id,
    name,
    projectId: project?.id ?? null,
  });
  return { cluster: cluster.name, name, owner: project?.name ?? 'public' };
}

/** What a project may use of one kind, as its members see it. */
async function listFor(ctx: AuthedContext, kind: GrantKind, projectName: string) {
  const project = await projectOf(ctx, projectName);
  return (await projectGrants(ctx.sql, project.id, kind)).map(({ kind: _, ...g }) => g);
}

/**
 * A router over one kind of grant: admins give (`project` named: that project's; none: public,
 * every project's) and take back; a project's members list what they may use.
 */
function grantsRouter<K extends GrantKind, G extends string, R extends string>(
  kind: K,
  verbs: { give: G; takeBack: R },
) {
  const input = grantInput(kind);
  const at = routes(`${kind}s`);
  const grants = `/clusters/{cluster}/${kind}s/{${kind}}/grants` as const;
  const give = procedure
    .meta(at(ADMIN_WRITE, `POST ${grants}`))
    .input(input)
    .output(grantChangeOut)
    .mutation(({ ctx, input }) => change(ctx, kind, input as GrantIn, grant));
  const takeBack = procedure
    .meta(at(ADMIN_WRITE, `DELETE ${grants}`))
    .input(input)
    .output(grantChangeOut)
    .mutation(({ ctx, input }) => change(ctx, kind, input as GrantIn, revoke));
  const list = procedure
    .meta(at(PROJECT_READ, `GET /projects/{project}/${kind}s`))
    .input(byProject)
    .output(grantsOut)
    .query(({ ctx, input }) => listFor(ctx, kind, input.project));
  return router({ [verbs.give]: give, [verbs.takeBack]: takeBack, list } as {
    [k in G]: typeof give;
  } & { [k in R]: typeof takeBack } & { list: typeof list });
}

/** Which clusters' networks a project's instances may attach to. */
export const networksRouter = grantsRouter('network', { give: 'grant', takeBack: 'revoke' });

/** Which clusters' images a project's instances may boot from. */
export const imagesRouter = grantsRouter('image', { give: 'publish', takeBack: 'unpublish' });
