import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DomainSpec } from '../../drivers/driver.ts';
import type { DomainXmlOptions } from '../../drivers/libvirt/domain-xml.ts';
import path from 'node:path';
import {
  desiredStateOf,
  domainXml,
  macsOf,
  vagothIdOf,
  xmlEscape,
} from '../../drivers/libvirt/domain-xml.ts';
import type { NicDefinition } from '../../registry/types.ts';
import { child, parseXml, shapeOf, unescapeXml, type XmlElement } from '../support/mini-xml.ts';

const ID = '0b6c7c1e-8f3a-4d2b-9a51-3c2f1e0d9b8a';
const OTHER_ID = 'ffffffff-0000-4000-8000-000000000000';

function spec(name: string, nics: NicDefinition[] = [], id = ID): DomainSpec {
  return { id, name, definition: { vcpus: 3, memoryMiB: 1536, diskGiB: 0, nics, placement: {} } };
}

const nic = (network: string, mac: string): NicDefinition => ({ network, mac });

function interfaces(root: XmlElement): { network: string | undefined; mac: string | undefined }[] {
  return child(root, 'devices')
    .children.filter((c) => c.name === 'interface')
    .map((i) => ({
      network: child(i, 'source').attributes.network,
      mac: child(i, 'mac').attributes.address,
    }));
}

describe('domainXml', () => {
  it('carries the name, uuid, memory, vcpus and every NIC', () => {
    const nics = [nic('default', '52:54:00:00:00:01'), nic('storage', '52:54:00:00:00:02')];
    const root = parseXml(domainXml(spec('web-1', nics), { domainType: 'kvm' }));
    expect(root.name).toBe('domain');
    expect(root.attributes).toEqual({ type: 'kvm' });
    expect(child(root, 'name').text).toBe('web-1');
    expect(child(root, 'uuid').text).toBe(ID);
    expect(child(root, 'memory')).toMatchObject({ text: '1536', attributes: { unit: 'MiB' } });
    expect(child(root, 'vcpu').text).toBe('3');
    expect(interfaces(root)).toEqual([
      { network: 'default', mac: '52:54:00:00:00:01' },
      { network: 'storage', mac: '52:54:00:00:00:02' },
    ]);
  });

  it.each([0, 1, 5])('has exactly one <interface> per NIC (%i NICs)', (count) => {
    const nics = Array.from({ length: count }, (_, i) => nic(`net${i}`, `52:54:00:00:00:0${i}`));
    const xml = domainXml(spec('vm', nics), { domainType: 'test' });
    expect(interfaces(parseXml(xml))).toHaveLength(count);
    expect(xml.match(/<interface\b/g) ?? []).toHaveLength(count);
  });

  const hostile = [
    ["'", `a'b`],
    ['"', `a"b`],
    ['< and >', `<b>bold</b>`],
    ['&', `a&amp;b&`],
    ['a CDATA end', `x]]>y`],
    ['an element break-out', `</name><devices><disk type='file'/></devices><name>`],
    ['an attribute break-out', `x' type='ethernet' foo='`],
    ['a double-quoted attribute break-out', `x" type="ethernet`],
    [
      'a fake vagoth id',
      `</name><metadata><vagoth:vm xmlns:vagoth='https://vagoth.dev/xmlns/vm/1'><vagoth:id>${OTHER_ID}</vagoth:id></vagoth:vm></metadata><name>`,
    ],
    ['tab, newline and non-ASCII', 'tab\there\nnew line, ünïcødé 🖥'],
  ];

  /** A domain using every free-text field: name, networks, a bridge, volumes, kernel boot, console log. */
  function everyField(value: string, id = ID): { spec: DomainSpec; options: DomainXmlOptions } {
    return {
      spec: {
        id,
        name: value,
        volumes: [{ pool: value, name: value }],
        definition: {
          vcpus: 1,
          memoryMiB: 256,
          diskGiB: 1,
          nics: [nic(value, '52:54:00:00:00:01'), nic(`bridge:${value}`, '52:54:00:00:00:02')],
          boot: { kernel: value, initrd: value, cmdline: value },
          placement: {},
        },
      },
      options: { domainType: value, consoleLogDir: `/logs/${value}` },
    };
  }
  const benign = everyField('benign');
  const benignShape = shapeOf(parseXml(domainXml(benign.spec, benign.options)));

  it.each(hostile)('%s in every free-text field adds no element or attribute', (_what, value) => {
    const { spec: s, options } = everyField(value);
    const xml = domainXml(s, options);
    const root = parseXml(xml);
    expect(shapeOf(root)).toEqual(benignShape);
    expect(root.attributes.type).toBe(value);
    expect(child(root, 'name').text).toBe(value);
    const os = child(root, 'os');
    expect(['kernel', 'initrd', 'cmdline'].map((n) => child(os, n).text)).toEqual([
      value,
      value,
      value,
    ]);
    const devices = child(root, 'devices');
    expect(child(child(devices, 'disk'), 'source').attributes).toEqual({
      pool: value,
      volume: value,
    });
    const [network, bridge] = devices.children.filter((c) => c.name === 'interface');
    expect(child(network!, 'source').attributes).toEqual({ network: value });
    expect(child(bridge!, 'source').attributes).toEqual({ bridge: value });
    expect(child(child(devices, 'serial'), 'log').attributes.file).toBe(
      path.posix.join(`/logs/${value}`, `${ID}.log`),
    );
    if (/[<>&'"]/.test(value)) expect(xml).not.toContain(value);
    expect(vagothIdOf(xml)).toBe(ID);
  });

  it.each([
    ['NUL in the name', spec('a\u0000b'), 'name'],
    ['ESC in the name', spec('a\u001b[31mred'), 'name'],
    [
      'a form feed in a network',
      spec('vm', [nic('net\u000c', '52:54:00:00:00:01')]),
      'definition.nics[0].network',
    ],
    [
      'U+FFFF in a MAC',
      spec('vm', [nic('net', '52:54:00:00:00:0\uffff')]),
      'definition.nics[0].mac',
    ],
    [
      'a lone surrogate in a volume',
      { ...spec('vm'), volumes: [{ pool: 'p', name: 'v\ud800' }] },
      'volumes[0].name',
    ],
  ])('refuses %s, naming the field', (_what, s, field) => {
    expect(() => domainXml(s, { domainType: 'kvm' })).toThrow(
      new RegExp(
        `^${field.replace(/[[\].]/g, '\\$&')}: value contains a character XML cannot represent`,
      ),
    );
  });

  it.each([
    ['a MAC that is not one', spec('vm', [nic('net', '52:54:00:00:01')]), 'definition.nics[0].mac'],
    ['an id that is not a UUID', spec('vm', [], 'not-a-uuid'), 'id'],
    [
      'no vCPU',
      { ...spec('vm'), definition: { ...spec('vm').definition, vcpus: 0 } },
      'definition.vcpus',
    ],
    [
      'a fractional memory size',
      { ...spec('vm'), definition: { ...spec('vm').definition, memoryMiB: 1.5 } },
      'definition.memoryMiB',
    ],
  ])('refuses %s, naming the field', (_what, s, field) => {
    expect(() => domainXml(s, { domainType: 'kvm' })).toThrow(`${field}: must be`);
  });

  it('attaches volumes as virtio disks in order, by pool and volume', () => {
    const volumes = Array.from({ length: 28 }, (_, i) => ({ pool: 'vagoth', name: `d${i}.img` }));
    const root = parseXml(domainXml({ ...spec('vm'), volumes }, { domainType: 'kvm' }));
    const disks = child(root, 'devices').children.filter((c) => c.name === 'disk');
    expect(disks.map((d) => child(d, 'source').attributes.volume)).toEqual(
      volumes.map((v) => v.name),
    );
    expect(disks.map((d) => child(d, 'target').attributes.dev)).toEqual([
      ...'abcdefghijklmnopqrstuvwxyz'.split('').map((c) => `vd${c}`),
      'vdaa',
      'vdab',
    ]);
    expect(new Set(disks.map((d) => child(d, 'target').attributes.bus))).toEqual(
      new Set(['virtio']),
    );
  });

  it('boots a kernel directly only when the definition says so, and logs the console on request', () => {
    const plain = parseXml(domainXml(spec('vm'), { domainType: 'qemu' }));
    expect(child(plain, 'os').children.map((c) => c.name)).toEqual(['type']);
    expect(child(child(plain, 'devices'), 'serial').children.map((c) => c.name)).toEqual([
      'target',
    ]);
    const booted = spec('vm');
    booted.definition.boot = { kernel: '/boot/vmlinuz' };
    const root = parseXml(
      domainXml(booted, { domainType: 'qemu', consoleLogDir: '/var/log/vagoth' }),
    );
    expect(child(root, 'os').children.map((c) => [c.name, c.text])).toEqual([
      ['type', 'hvm'],
      ['kernel', '/boot/vmlinuz'],
    ]);
    expect(child(child(child(root, 'devices'), 'serial'), 'log').attributes).toEqual({
      file: `/var/log/vagoth/${ID}.log`,
      append: 'off',
    });
  });
});

describe('what the driver reads back from a domain', () => {
  it('finds the MACs of every NIC, lower case, and the state a migration wants', () => {
    const nics = [nic('default', '52:54:00:AA:00:01'), nic('bridge:br0', '52:54:00:aa:00:02')];
    const xml = domainXml(spec('vm', nics), { domainType: 'kvm', desired: 'running' });
    expect(macsOf(xml)).toEqual(['52:54:00:aa:00:01', '52:54:00:aa:00:02']);
    expect(desiredStateOf(xml)).toBe('running');
    expect(desiredStateOf(domainXml(spec('vm'), { domainType: 'kvm' }))).toBeNull();
    expect(macsOf(LIBVIRT_DUMPXML)).toEqual([]);
  });

  it('reads the desired state only inside the vagoth block', () => {
    const elsewhere = withMetadata(
      `<other:vm xmlns:other="https://example.com/vm"><other:desired>running</other:desired></other:vm>`,
    );
    expect(desiredStateOf(elsewhere)).toBeNull();
  });
});

/** The characters XML 1.0 can carry (its `Char` production), stated independently of the code under test. */
function xmlCanCarry(text: string): boolean {
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    const ok =
      cp === 0x9 ||
      cp === 0xa ||
      cp === 0xd ||
      (cp >= 0x20 && cp <= 0xd7ff) ||
      (cp >= 0xe000 && cp <= 0xfffd) ||
      (cp >= 0x10000 && cp <= 0x10ffff);
    if (!ok) return false;
  }
  return true;
}

describe('xmlEscape', () => {
  const codeUnit = (min: number, max: number) =>
    fc.integer({ min, max }).map((c) => String.fromCharCode(c));
  const unit = fc.oneof(
    fc.constantFrom('<', '>', '&', '"', "'", ']]>', '&amp;', '&lt;', '&#60;'),
    codeUnit(0, 0x20),
    fc.constantFrom('\ufffe', '\uffff', '\ufffd'),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
  );

  it('never emits markup characters and unescapes back to its input, or refuses', () => {
    fc.assert(
      fc.property(fc.string({ unit, maxLength: 40 }), (input) => {
        if (!xmlCanCarry(input)) {
          expect(() => xmlEscape(input)).toThrow();
          return;
        }
        const out = xmlEscape(input);
        expect(out).not.toMatch(/[<>"']/);
        expect(out).not.toMatch(/&(?!(?:amp|lt|gt|quot|apos);)/);
        expect(unescapeXml(out)).toBe(input);
      }),
      { numRuns: 2000 },
    );
  });

  it.each([
    [0, '0'],
    [1536, '1536'],
    ['a&b', 'a&amp;b'],
    [`<'">`, '&lt;&apos;&quot;&gt;'],
  ])('escapes %j as %j', (input, expected) => {
    expect(xmlEscape(input)).toBe(expected);
  });

  // Unpaired UTF-16 surrogates are outside XML 1.0's Char production too: emitted as is,
  // UTF-8 encoding would silently turn them into U+FFFD and the domain get another name.
  it.each([
    ['a lone high surrogate', 'vm-\ud800'],
    ['a lone low surrogate', '\udc00-vm'],
  ])('refuses %s like the other characters XML cannot carry', (_what, value) => {
    expect(() => xmlEscape(value)).toThrow(/character XML cannot represent/);
  });
});

// What `virsh dumpxml` returns for a domain domainXml defined (libvirt 10, test driver): it
// re-serialises the namespace declaration with double quotes.
const LIBVIRT_DUMPXML = `<domain type='test'>
  <name>web-1</name>
  <uuid>${ID}</uuid>
  <metadata>
    <vagoth:vm xmlns:vagoth="https://vagoth.dev/xmlns/vm/1">
      <vagoth:id>${ID}</vagoth:id>
    </vagoth:vm>
  </metadata>
  <memory unit='KiB'>524288</memory>
  <currentMemory unit='KiB'>524288</currentMemory>
  <vcpu placement='static'>2</vcpu>
</domain>`;

const withMetadata = (metadata: string, extra = '') => `<domain type='kvm'>
  <name>someone-elses</name>
  <uuid>${ID}</uuid>${extra}
  <metadata>
    ${metadata}
  </metadata>
</domain>`;

describe('vagothIdOf', () => {
  it.each([
    [
      'the XML domainXml writes',
      domainXml(spec('web-1', [nic('default', '52:54:00:12:34:56')]), { domainType: 'kvm' }),
    ],
    ["libvirt's re-serialised form", LIBVIRT_DUMPXML],
    [
      'another prefix bound to the vagoth namespace',
      withMetadata(`<v:vm xmlns:v="https://vagoth.dev/xmlns/vm/1"><v:id>${ID}</v:id></v:vm>`),
    ],
  ])('finds the id in %s', (_what, xml) => {
    expect(vagothIdOf(xml)).toBe(ID);
  });

  it.each([
    [
      'a domain without metadata',
      `<domain type='kvm'><name>plain</name><uuid>${ID}</uuid></domain>`,
    ],
    [
      'metadata of another namespace',
      withMetadata(
        `<other:vm xmlns:other="https://example.com/xmlns/vm/1"><other:id>${ID}</other:id></other:vm>`,
      ),
    ],
    [
      'the vagoth prefix bound to another namespace',
      withMetadata(
        `<vagoth:vm xmlns:vagoth="https://example.com/vm"><vagoth:id>${ID}</vagoth:id></vagoth:vm>`,
      ),
    ],
    [
      'a namespace that only starts like vagoth’s',
      withMetadata(
        `<vagoth:vm xmlns:vagoth="https://vagoth.dev/xmlns/vm/10"><vagoth:id>${ID}</vagoth:id></vagoth:vm>`,
      ),
    ],
    [
      'the vagoth namespace bound to a prefix the element does not use',
      withMetadata(
        `<vagoth:vm xmlns:x="https://vagoth.dev/xmlns/vm/1"><vagoth:id>${ID}</vagoth:id></vagoth:vm>`,
      ),
    ],
    [
      'an id that is not a uuid',
      withMetadata(
        `<vagoth:vm xmlns:vagoth="https://vagoth.dev/xmlns/vm/1"><vagoth:id>web-1</vagoth:id></vagoth:vm>`,
      ),
    ],
    [
      'a truncated id',
      withMetadata(
        `<vagoth:vm xmlns:vagoth="https://vagoth.dev/xmlns/vm/1"><vagoth:id>${ID.slice(0, -1)}</vagoth:id></vagoth:vm>`,
      ),
    ],
    [
      'an id with a character too many',
      withMetadata(
        `<vagoth:vm xmlns:vagoth="https://vagoth.dev/xmlns/vm/1"><vagoth:id>${ID}0</vagoth:id></vagoth:vm>`,
      ),
    ],
    [
      'an empty id',
      withMetadata(
        `<vagoth:vm xmlns:vagoth="https://vagoth.dev/xmlns/vm/1"><vagoth:id></vagoth:id></vagoth:vm>`,
      ),
    ],
    [
      'an empty vagoth block',
      withMetadata(`<vagoth:vm xmlns:vagoth="https://vagoth.dev/xmlns/vm/1"/>`),
    ],
    [
      'vagoth markup escaped inside a description',
      withMetadata(
        '',
        `\n  <description>&lt;vagoth:vm xmlns:vagoth="https://vagoth.dev/xmlns/vm/1"&gt;&lt;vagoth:id&gt;${ID}&lt;/vagoth:id&gt;&lt;/vagoth:vm&gt;</description>`,
      ),
    ],
  ])('is null for %s', (_what, xml) => {
    expect(vagothIdOf(xml)).toBeNull();
  });
});
