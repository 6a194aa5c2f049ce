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

export interface DomainXmlOptions {
  /** libvirt's domain type: `kvm`, `qemu` (software emulation) or `test`. */
  domainType: string;
}

export function domainXml(spec: DomainSpec, options: DomainXmlOptions): string {
  const e = xmlEscape;
  const nics = spec.definition.nics
    .map(
      (nic) => `    <interface type='network'>
      <source network='${e(nic.network)}'/>
      <mac address='${e(nic.mac)}'/>
      <model type='virtio'/>
    </interface>`,
    )
    .join('\n');
  return `<domain type='${e(options.domainType)}'>
  <name>${e(spec.name)}</name>
  <uuid>${e(spec.id)}</uuid>
  <metadata>
    <vagoth:vm xmlns:vagoth='${VAGOTH_XMLNS}'>
      <vagoth:id>${e(spec.id)}</vagoth:id>
    </vagoth:vm>
  </metadata>
  <memory unit='MiB'>${e(spec.definition.memoryMiB)}</memory>
  <vcpu>${e(spec.definition.vcpus)}</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
${nics}
    <serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
  </devices>
</domain>
`;
}

/** The vagoth VM id in a domain's XML, or null when vagoth did not create the domain. */
export function vagothIdOf(xml: string): string | null {
  const ns = VAGOTH_XMLNS.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  const block = new RegExp(`<(\\w+):vm xmlns:\\1=['"]${ns}['"]>([\\s\\S]*?)</\\1:vm>`).exec(xml);
  if (!block) return null;
  const id =
    /<\w+:id>([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})<\/\w+:id>/.exec(
      block[2] ?? '',
    );
  return id?.[1] ?? null;
}
