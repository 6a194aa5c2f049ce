import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { xmlEscape } from './domain-xml.ts';

export interface SimulatedHostOptions {
  cpus: number;
  memoryMiB: number;
}

/**
 * Writes a node description for libvirt's test driver and returns its URI: every connection
 * to `test:///<file>` is a separate simulated hypervisor with these CPUs and this memory.
 */
export async function writeSimulatedHost(
  dir: string,
  name: string,
  options: SimulatedHostOptions,
): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = path.resolve(dir, `${name}.xml`);
  const cpus = xmlEscape(options.cpus);
  await writeFile(
    file,
    `<node>
  <cpu>
    <mhz>2400</mhz><model>x86_64</model>
    <active>${cpus}</active><nodes>1</nodes><sockets>1</sockets><cores>${cpus}</cores><threads>1</threads>
  </cpu>
  <memory>${xmlEscape(options.memoryMiB * 1024)}</memory>
</node>
`,
  );
  return `test://${file}`;
}
