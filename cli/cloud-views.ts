import type { CloudOut } from './cloud-client.ts';
import { clean, field, pairsText, table, when, yesNo, type Column } from './table.ts';

// What an operator reads of each of the cloud's answers, as table columns.

type Cluster = CloudOut['clusters']['list'][number];
type ClusterDetail = CloudOut['clusters']['get'];
type User = CloudOut['users']['list'][number];
type Project = CloudOut['projects']['list'][number];
type Member = CloudOut['projects']['get']['members'][number];
type CloudEvent = CloudOut['projects']['events'][number];
type Token = CloudOut['tokens']['list'][number];
type Instance = CloudOut['instances']['get'];
type Operation = CloudOut['instances']['start']['operation'];
type QuotaAnswer = CloudOut['quotas']['get'];
type Asked = CloudOut['instances']['operations'][number];

const mib = (n: number) => `${n}MiB`;
const gib = (n: number) => `${n}GiB`;

export const CLUSTER: Column<Cluster>[] = [
  field('NAME', 'name'),
  field('DRIVER', 'driver'),
  field('REGION', 'region'),
  field('DRAINING', 'draining', yesNo),
  field('TAGS', 'tags', pairsText),
  field('URL', 'url'),
];

/** A cluster with what it has free now, or why it did not say. */
export const CLUSTER_DETAIL: Column<ClusterDetail>[] = [
  ...(CLUSTER as Column<ClusterDetail>[]),
  {
    header: 'HOSTS',
    cell: (c) => (c.capacity ? `${c.capacity.activeHosts}/${c.capacity.hosts}` : '?'),
  },
  { header: 'VMS', cell: (c) => String(c.capacity?.vms ?? '?') },
  { header: 'FREE VCPUS', cell: (c) => String(c.capacity?.free.vcpus ?? '?') },
  { header: 'FREE MEMORY', cell: (c) => (c.capacity ? mib(c.capacity.free.memoryMiB) : '?') },
  { header: 'FREE DISK', cell: (c) => (c.capacity ? gib(c.capacity.free.diskGiB) : '?') },
  field('UNREACHABLE', 'unreachable'),
];

export const USER: Column<User>[] = [
  field('NAME', 'name'),
  field('ADMIN', 'admin', yesNo),
  field('CREATED', 'createdAt', when),
  field('DISABLED', 'disabledAt', when),
];

export const ME: Column<CloudOut['users']['me']>[] = [
  ...(USER as Column<CloudOut['users']['me']>[]),
  { header: 'TOKEN', cell: (u) => u.token.id ?? '-' },
  { header: 'ACCESS', cell: (u) => (u.token.readOnly ? 'read-only' : 'read-write') },
];

export const PROJECT: Column<Project>[] = [
  field('NAME', 'name'),
  field('ROLE', 'role'),
  field('CREATED', 'createdAt', when),
];

export const MEMBER: Column<Member>[] = [
  field('USER', 'user'),
  field('ROLE', 'role'),
  field('ADDED', 'addedAt', when),
];

const PROJECT_HEAD: Column<CloudOut['projects']['get']>[] = [
  field('NAME', 'name'),
  field('CREATED', 'createdAt', when),
];

/** A project and, below it, its members. */
export function projectDetail(p: CloudOut['projects']['get']): string {
  return `${table(PROJECT_HEAD, [p])}\n\n${table(MEMBER, p.members)}`;
}

export const EVENT: Column<CloudEvent>[] = [
  field('ID', 'id'),
  field('AT', 'at', when),
  field('USER', 'user'),
  field('ACTION', 'action'),
  field('TARGET', 'target'),
  { header: 'DETAIL', cell: (e) => (Object.keys(e.detail).length ? JSON.stringify(e.detail) : '') },
];

export const TOKEN: Column<Token>[] = [
  field('ID', 'id'),
  field('NAME', 'name'),
  field('USER', 'user'),
  field('PROJECT', 'project'),
  { header: 'ACCESS', cell: (t) => (t.readOnly ? 'read-only' : 'read-write') },
  field('EXPIRES', 'expiresAt', when),
  field('REVOKED', 'revokedAt', when),
];

export const INSTANCE: Column<Instance>[] = [
  field('NAME', 'name'),
  field('STATE', 'state'),
  field('CLUSTER', 'cluster'),
  field('VCPUS', 'vcpus'),
  field('MEMORY', 'memoryMiB', mib),
  field('DISK', 'diskGiB', gib),
  field('IMAGE', 'image'),
  {
    header: 'ADDRESSES',
    cell: (i) => i.addresses.map((a) => `${a.network}=${a.ip ?? '?'}`).join(','),
  },
];

/** One instance, and the error its cluster reports for it, if any. */
export function instanceDetail(i: Instance): string {
  const head = table(INSTANCE, [i]);
  return i.error === null ? head : `${head}\n\nerror: ${clean(i.error)}`;
}

export const OPERATION: Column<Operation>[] = [
  field('KIND', 'kind'),
  { header: 'OPERATION', cell: (o) => (o.updateId ? `${o.id} ${o.updateId}` : o.id) },
  field('URL', 'url'),
];

/** An instance's history: what was asked, by whom, and the operation it started. */
export const HISTORY: Column<Asked>[] = [
  field('AT', 'at', when),
  field('USER', 'user'),
  field('ACTION', 'action'),
  {
    header: 'OPERATION',
    cell: (a) => (a.operation ? (a.operation.updateId ?? a.operation.id) : ''),
  },
  { header: 'URL', cell: (a) => a.operation?.url ?? '' },
];

const RESOURCES = [
  ['instances', 'instances', String],
  ['vcpus', 'vcpus', String],
  ['memory', 'memoryMiB', mib],
  ['disk', 'diskGiB', gib],
  ['ips', 'ips', String],
] as const;

interface QuotaRow {
  resource: string;
  limit: string;
  used: string;
}

const QUOTA: Column<QuotaRow>[] = [
  field('RESOURCE', 'resource'),
  field('LIMIT', 'limit'),
  field('USED', 'used'),
];

/** A project's limits beside what it uses, one resource a row. */
export function quotaTable(q: QuotaAnswer): string {
  const rows = RESOURCES.map(([resource, key, show]) => ({
    resource,
    limit: q.quota[key] === null ? 'none' : show(q.quota[key]),
    used: show(q.usage[key]),
  }));
  return table(QUOTA, rows);
}
