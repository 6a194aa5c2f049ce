import type { ServicesOut } from './services-client.ts';
import { clean, field, table, when, type Column } from './table.ts';

// What an operator reads of the service layer's answers, as table columns and lines.

type Service = ServicesOut['services']['list'][number];
type Detail = ServicesOut['services']['get'];
type Member = Detail['members'][number];
type ServiceEvent = ServicesOut['services']['events'][number];

/** Where a service stands, in a word. */
export function stateOf(s: Service): string {
  const status = s.status;
  if (s.deletingAt !== null) return 'deleting';
  if (s.paused) return 'paused';
  if (status.error !== undefined) return 'failing';
  if (status.at === undefined) return 'new';
  return status.settled && status.running === s.replicas ? 'settled' : 'reconciling';
}

const running = (s: Service) => `${s.status.running ?? 0}/${s.replicas}`;

export const SERVICE: Column<Service>[] = [
  field('NAME', 'name'),
  { header: 'STATE', cell: stateOf },
  { header: 'RUNNING', cell: running },
  { header: 'IMAGE', cell: (s) => s.template.image },
  { header: 'VCPUS', cell: (s) => String(s.template.vcpus) },
  { header: 'MEMORY', cell: (s) => `${s.template.memoryMiB}MiB` },
  field('REVISION', 'revision'),
  field('SPREAD', 'spread'),
  field('EVERY', 'everySeconds', (n) => `${n}s`),
];

const DETAIL: Column<Detail>[] = [
  ...SERVICE.slice(0, 3),
  { header: 'PENDING', cell: (s) => String(s.status.pending ?? 0) },
  field('REVISION', 'revision'),
  field('SPREAD', 'spread'),
  { header: 'MAX-UNAVAILABLE', cell: (s) => String(s.rollout.maxUnavailable) },
  { header: 'MAX-SURGE', cell: (s) => String(s.rollout.maxSurge) },
  field('EVERY', 'everySeconds', (n) => `${n}s`),
  field('CREATED BY', 'createdBy'),
  field('CREATED', 'createdAt', when),
];

/** The template as the API shows it: whether it has user-data, never what it is. */
const TEMPLATE: Column<Detail['template']>[] = [
  field('IMAGE', 'image'),
  field('VCPUS', 'vcpus'),
  field('MEMORY', 'memoryMiB', (n) => `${n}MiB`),
  field('DISK', 'diskGiB', (n) => `${n}GiB`),
  { header: 'NETWORKS', cell: (t) => (t.nics ?? []).map((n) => n.network).join(',') },
  { header: 'USER-DATA', cell: (t) => (t.userData === null ? 'none' : 'set') },
  field('SSH KEYS', 'sshAuthorizedKeys'),
];

type Placement = NonNullable<Detail['placements']>[number];

/** Where its replicas go; a placement without a cloud is in the service's own (`-`). */
const PLACEMENT: Column<Placement>[] = [
  field('CLOUD', 'cloud'),
  {
    header: 'WHERE',
    cell: (p) =>
      p.cluster !== undefined
        ? `cluster:${p.cluster}`
        : p.region !== undefined
          ? `region:${p.region}`
          : 'any',
  },
  field('REPLICAS', 'replicas'),
];

const healthText = (h: Detail['health']) =>
  h === null ? 'none' : 'tcp' in h ? `tcp:${h.tcp}` : `http:${h.http.port}${h.http.path}`;

/** How its instances are checked, and how long one its cluster does not answer may wait. */
const HEALTH: Column<Detail>[] = [
  { header: 'HEALTH', cell: (s) => healthText(s.health) },
  field('UNHEALTHY-AFTER', 'unhealthyAfter'),
  field('GRACE', 'unknownGraceSeconds', (n) => `${n}s`),
];

const MEMBER: Column<Member>[] = [
  field('INSTANCE', 'name'),
  field('REVISION', 'revision'),
  field('CLOUD', 'cloud'),
  field('CREATED', 'createdAt', when),
];

/** The other clouds it holds a token in, with its project there (the token is never answered). */
const cloudsLine = (s: Detail) =>
  s.clouds.length === 0
    ? []
    : [
        `other clouds: ${s.clouds.map((c) => clean(`${c.cloud} (project ${c.project})`)).join(', ')}`,
      ];

/** A service, its template, its instances, and what its schedule and last reconcile said. */
export function serviceDetail(s: Detail): string {
  const status = s.status;
  const lines = [
    table(DETAIL, [s]),
    table(TEMPLATE, [s.template]),
    ...(s.placements === null ? [] : [table(PLACEMENT, s.placements)]),
    table(HEALTH, [s]),
    table(MEMBER, s.members),
    [
      ...cloudsLine(s),
      s.schedule
        ? `schedule ${s.schedule.id}${s.schedule.paused ? ' (paused)' : ''}, next run ${
            s.schedule.nextRun === null ? '-' : when(s.schedule.nextRun)
          }`
        : 'schedule: none found',
      `last reconcile: ${status.at === undefined ? 'none yet' : when(status.at)}`,
      ...(status.refused ?? []).map((r) => `refused: ${clean(r)}`),
      ...(status.unhealthy ?? []).map((u) => `unhealthy: ${clean(u)}`),
      ...(status.error === undefined ? [] : [`error: ${clean(status.error)}`]),
    ].join('\n'),
  ];
  return lines.join('\n\n');
}

/** One line of how far the service is: its count of running over desired, and what holds it. */
export function progressText(s: Detail): string {
  const status = s.status;
  if (s.deletingAt !== null) return `${s.name}: deleting, ${s.members.length} instance(s) left`;
  const parts = [`${s.name}: ${running(s)} running`];
  if (status.pending) parts.push(`${status.pending} pending`);
  if (status.outdated) parts.push(`${status.outdated} outdated`);
  if (status.at === undefined) parts.push('waiting for its first reconcile');
  if (s.paused) parts.push('paused');
  if (status.refused?.length) parts.push(`refused: ${clean(status.refused.join('; '))}`);
  if (status.unhealthy?.length) parts.push(`unhealthy: ${clean(status.unhealthy.join('; '))}`);
  if (status.error !== undefined) parts.push(`last reconcile failed: ${clean(status.error)}`);
  return parts.join(', ');
}

export const EVENT: Column<ServiceEvent>[] = [
  field('ID', 'id'),
  field('AT', 'at', when),
  { header: 'ACTOR', cell: (e) => e.actor ?? '(reconcile)' },
  field('ACTION', 'action'),
  { header: 'DETAIL', cell: (e) => (Object.keys(e.detail).length ? JSON.stringify(e.detail) : '') },
];
