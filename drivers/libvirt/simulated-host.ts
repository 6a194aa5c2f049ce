import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { xmlEscape } from './domain-xml.ts';

export interface SimulatedVolume {
  name: string;
  capacityGiB: number;
  /** Where the volume claims to live; by default `<pool path>/<name>`. */
  path?: string;
}

export interface SimulatedPool {
  name: string;
  volumes?: SimulatedVolume[];
}

export interface SimulatedHostOptions {
  cpus: number;
  memoryMiB: number;
  /** Size of its storage pools (default 1024 GiB). */
  diskGiB?: number;
  /** Volumes already in the `vagoth` pool, such as base images. */
  volumes?: SimulatedVolume[];
  /** More pools besides `vagoth` (a test's foreign pool, say). */
  pools?: SimulatedPool[];
}

/** The fake directory a simulated pool claims; the test driver never touches the disk. */
export function simulatedPoolPath(host: string, pool: string): string {
  return pool === 'vagoth' ? `/vagoth-pool/${host}` : `/vagoth-pool/${host}-${pool}`;
}

function volumeXml(volume: SimulatedVolume): string {
  const target = volume.path
    ? `\n      <target><path>${xmlEscape(volume.path)}</path></target>`
    : '';
  return `
    <volume type='file'>
      <name>${xmlEscape(volume.name)}</name>
      <capacity unit='GiB'>${xmlEscape(volume.capacityGiB)}</capacity>
      <allocation>0</allocation>${target}
    </volume>`;
}

function poolXml(host: string, pool: SimulatedPool, diskGiB: number): string {
  return `
  <pool type='dir'>
    <name>${xmlEscape(pool.name)}</name>
    <capacity unit='GiB'>${xmlEscape(diskGiB)}</capacity>
    <allocation>0</allocation>
    <available unit='GiB'>${xmlEscape(diskGiB)}</available>
    <source/>
    <target><path>${xmlEscape(simulatedPoolPath(host, pool.name))}</path></target>${(pool.volumes ?? []).map(volumeXml).join('')}
  </pool>`;
}

/**
 * Writes a node description for libvirt's test driver and returns its URI: every connection
 * to `test:///<file>` is a separate simulated hypervisor with these CPUs, this memory and a
 * `vagoth` storage pool.
 */
export async function writeSimulatedHost(
  dir: string,
  name: string,
  options: SimulatedHostOptions,
): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = path.resolve(dir, `${name}.xml`);
  const cpus = xmlEscape(options.cpus);
  const diskGiB = options.diskGiB ?? 1024;
  const pools = [{ name: 'vagoth', volumes: options.volumes ?? [] }, ...(options.pools ?? [])];
  await writeFile(
    file,
    `<node>
  <cpu>
    <mhz>2400</mhz><model>x86_64</model>
    <active>${cpus}</active><nodes>1</nodes><sockets>1</sockets><cores>${cpus}</cores><threads>1</threads>
  </cpu>
  <memory>${xmlEscape(options.memoryMiB * 1024)}</memory>${pools.map((p) => poolXml(name, p, diskGiB)).join('')}
</node>
`,
  );
  return `test://${file}`;
}
