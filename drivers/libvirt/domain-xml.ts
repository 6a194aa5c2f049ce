import path from 'node:path';
import type { DomainSpec } from '../driver.ts';

export const VAGOTH_XMLNS = 'https://vagoth.dev/xmlns/vm/1';

const ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
};

/** Every value that reaches the XML goes through here, so no input can add markup. */
export function xmlEscape(value: string | number): string {
  const text = String(value);
  // Characters XML 1.0 cannot carry at all: refuse rather than emit a broken document.
  // eslint-disable-next-line no-control-regex -- the control characters are what is refused
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/.test(text) || !text.isWellFormed()) {
    throw new Error(`value contains a character XML cannot represent: ${JSON.stringify(text)}`);
  }
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c);
}

/** A definition vagoth cannot turn into a domain; `field` names the culprit. */
export class DomainXmlError extends Error {
  override name = 'DomainXmlError';
  constructor(
    readonly field: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${field}: ${message}`, options);
  }
}

function field(name: string, value: string | number): string {
  try {
    return xmlEscape(value);
  } catch (err) {
    throw new DomainXmlError(name, (err as Error).message, { cause: err });
  }
}

function positiveInteger(name: string, value: number): string {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new DomainXmlError(name, `must be a whole number >= 1, got ${String(value)}`);
  }
  return String(value);
}

function mustMatch(name: string, value: string, re: RegExp, what: string): void {
  if (!re.test(value))
    throw new DomainXmlError(name, `must be ${what}, got ${JSON.stringify(value)}`);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MAC = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/i;
/** A NIC whose network is `bridge:<name>` goes on that host bridge instead of a libvirt network. */
export const BRIDGE_PREFIX = 'bridge:';

export interface DomainXmlOptions {
  /** libvirt's domain type: `kvm`, `qemu` (software emulation) or `test`. */
  domainType: string;
  /** Where the serial console is also logged, as `<dir>/<vm id>.log` (so tests can read it). */
  consoleLogDir?: string;
  /** Recorded in the metadata so a cold migration retried half-way knows whether to start it. */
  desired?: 'running' | 'stopped';
  /**
   * The root disk (the first volume) is a qcow2 overlay on this host's copy of an image: its
   * backing file is named here, so the chain never depends on the path the overlay's own
   * header holds (which a move's copy brings from the source host).
   */
  overlay?: RootOverlay;
}

export interface RootOverlay {
  backing: string;
  format: 'raw' | 'qcow2';
}

/** A VM's cloud-init seed volume (volumes.ts's seedName), attached read-only. */
const SEED_VOLUME = /-seed\.iso$/;

/** vda, vdb, ..., vdz, vdaa, ...: libvirt's disk naming. */
function diskDev(index: number): string {
  let suffix = '';
  for (let i = index + 1; i > 0; i = Math.floor((i - 1) / 26)) {
    suffix = String.fromCharCode(97 + ((i - 1) % 26)) + suffix;
  }
  return `vd${suffix}`;
}

function disks(spec: DomainSpec, options: DomainXmlOptions): string[] {
  let disk = 0;
  return (spec.volumes ?? []).map((v, i) => {
    const source = `<source pool='${field(`volumes[${i}].pool`, v.pool)}' volume='${field(`volumes[${i}].name`, v.name)}'/>`;
    if (SEED_VOLUME.test(v.name)) {
      // A read-only virtio disk: cloud-init finds it by its label (cidata), and a guest needs
      // no SATA or CD-ROM driver to read it.
      return `    <disk type='volume' device='disk'>
      <driver name='qemu' type='raw'/>
      ${source}
      <target dev='${diskDev(disk++)}' bus='virtio'/>
      <readonly/>
    </disk>`;
    }
    const overlay = i === 0 ? options.overlay : undefined;
    const backing = overlay
      ? `
      <backingStore type='file'>
        <format type='${field('overlay.format', overlay.format)}'/>
        <source file='${field('overlay.backing', overlay.backing)}'/>
        <backingStore/>
      </backingStore>`
      : '';
    return `    <disk type='volume' device='disk'>
      <driver name='qemu' type='${overlay ? 'qcow2' : 'raw'}'/>
      ${source}${backing}
      <target dev='${diskDev(disk++)}' bus='virtio'/>
    </disk>`;
  });
}

function nics(spec: DomainSpec): string[] {
  return spec.definition.nics.map((nic, i) => {
    const at = `definition.nics[${i}]`;
    const mac = field(`${at}.mac`, nic.mac);
    mustMatch(`${at}.mac`, nic.mac, MAC, 'a MAC address');
    const source = nic.network.startsWith(BRIDGE_PREFIX)
      ? `type='bridge'>\n      <source bridge='${field(`${at}.network`, nic.network.slice(BRIDGE_PREFIX.length))}'/>`
      : `type='network'>\n      <source network='${field(`${at}.network`, nic.network)}'/>`;
    return `    <interface ${source}
      <mac address='${mac}'/>
      <model type='virtio'/>
    </interface>`;
  });
}

function os(spec: DomainSpec): string {
  const boot = spec.definition.boot;
  const lines = [`    <type arch='x86_64'>hvm</type>`];
  if (boot) {
    lines.push(`    <kernel>${field('definition.boot.kernel', boot.kernel)}</kernel>`);
    if (boot.initrd)
      lines.push(`    <initrd>${field('definition.boot.initrd', boot.initrd)}</initrd>`);
    if (boot.cmdline)
      lines.push(`    <cmdline>${field('definition.boot.cmdline', boot.cmdline)}</cmdline>`);
  }
  return `  <os>\n${lines.join('\n')}\n  </os>`;
}

function serial(spec: DomainSpec, options: DomainXmlOptions): string {
  if (!options.consoleLogDir) return `    <serial type='pty'><target port='0'/></serial>`;
  const file = path.posix.join(options.consoleLogDir, `${spec.id}.log`);
  return `    <serial type='pty'>
      <log file='${field('consoleLogDir', file)}' append='off'/>
      <target port='0'/>
    </serial>`;
}

export function domainXml(spec: DomainSpec, options: DomainXmlOptions): string {
  const id = field('id', spec.id);
  mustMatch('id', spec.id, UUID, 'a lower-case UUID');
  const desired = options.desired
    ? `\n      <vagoth:desired>${field('desired', options.desired)}</vagoth:desired>`
    : '';
  return `<domain type='${field('domainType', options.domainType)}'>
  <name>${field('name', spec.name)}</name>
  <uuid>${id}</uuid>
  <metadata>
    <vagoth:vm xmlns:vagoth='${VAGOTH_XMLNS}'>
      <vagoth:id>${id}</vagoth:id>${desired}
    </vagoth:vm>
  </metadata>
  <memory unit='MiB'>${positiveInteger('definition.memoryMiB', spec.definition.memoryMiB)}</memory>
  <vcpu>${positiveInteger('definition.vcpus', spec.definition.vcpus)}</vcpu>
${os(spec)}
  <features><acpi/><apic/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
${[...disks(spec, options), ...nics(spec), serial(spec, options)].join('\n')}
    <console type='pty'><target type='serial' port='0'/></console>
  </devices>
</domain>
`;
}

/** The vagoth block of a domain's metadata, bound to vagoth's namespace by whatever prefix. */
const VAGOTH_BLOCK = new RegExp(
  `<(\\w+):vm xmlns:\\1=['"]${VAGOTH_XMLNS.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}['"]>([\\s\\S]*?)</\\1:vm>`,
);

function vagothBlock(xml: string): { prefix: string; body: string } | null {
  const block = VAGOTH_BLOCK.exec(xml);
  return block ? { prefix: block[1] ?? '', body: block[2] ?? '' } : null;
}

/** The vagoth VM id in a domain's XML, or null when vagoth did not create the domain. */
export function vagothIdOf(xml: string): string | null {
  const block = vagothBlock(xml);
  if (!block) return null;
  const id =
    /<\w+:id>([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})<\/\w+:id>/.exec(
      block.body,
    );
  return id?.[1] ?? null;
}

/** The state recorded by a cold migration for the domain it defined on its target. */
export function desiredStateOf(xml: string): 'running' | 'stopped' | null {
  const block = vagothBlock(xml);
  if (!block) return null;
  const p = block.prefix;
  const desired = new RegExp(`<${p}:desired>(running|stopped)</${p}:desired>`).exec(block.body);
  return (desired?.[1] as 'running' | 'stopped' | undefined) ?? null;
}

/** MAC addresses of the domain's NICs, lower case, in order. */
export function macsOf(xml: string): string[] {
  const macs: string[] = [];
  for (const [nic = ''] of xml.matchAll(/<interface\b[\s\S]*?<\/interface>/g)) {
    const mac = /<mac address=['"]([0-9a-fA-F:]{17})['"]/.exec(nic)?.[1];
    if (mac) macs.push(mac.toLowerCase());
  }
  return macs;
}
