/** Pure: what a project uses and may use, and whether one more instance fits. */

export const RESOURCES = ['instances', 'vcpus', 'memoryMiB', 'diskGiB', 'ips'] as const;
export type Resource = (typeof RESOURCES)[number];

export type Usage = Record<Resource, number>;
/** A limit per resource; null: none. */
export type Quota = Record<Resource, number | null>;

export const NO_QUOTA: Quota = {
  instances: null,
  vcpus: null,
  memoryMiB: null,
  diskGiB: null,
  ips: null,
};

export interface Breach {
  resource: Resource;
  limit: number;
  usage: number;
  asked: number;
}

/** The first limit `asked` would pass, given what is used; null when it fits them all. */
export function quotaBreach(quota: Quota, usage: Usage, asked: Usage): Breach | null {
  for (const resource of RESOURCES) {
    const limit = quota[resource];
    if (limit !== null && usage[resource] + asked[resource] > limit) {
      return { resource, limit, usage: usage[resource], asked: asked[resource] };
    }
  }
  return null;
}

export function describeBreach(project: string, b: Breach): string {
  return `project ${project} is over its ${b.resource} quota: limit ${b.limit}, in use ${b.usage}, asked ${b.asked}`;
}
