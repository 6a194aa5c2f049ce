/**
 * A strict parser for the XML subset vagoth writes: elements, attributes, text and the five
 * predefined entities. The project has no XML parser dependency; this one exists so tests can
 * check the structure of generated documents. Anything outside the subset (comments, CDATA,
 * DOCTYPE, numeric references, a bare `&` or `<`, `]]>` in text, a duplicate attribute, a
 * mismatched end tag) throws, so malformed output fails the test instead of being skipped over.
 */
export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  /** The element's own character data, entities decoded, children's text excluded. */
  text: string;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
const NAME = String.raw`[A-Za-z_][\w.:-]*`;
const START_TAG = new RegExp(
  String.raw`<(${NAME})((?:\s+${NAME}\s*=\s*(?:'[^'<]*'|"[^"<]*"))*)\s*(/?)>`,
  'y',
);
const ATTRIBUTE = new RegExp(String.raw`(${NAME})\s*=\s*(?:'([^'<]*)'|"([^"<]*)")`, 'g');
const END_TAG = new RegExp(String.raw`</(${NAME})\s*>`, 'y');
const TEXT = /[^<]*/y;

export function unescapeXml(text: string): string {
  return text.replace(/&([^;&]*);|&/g, (ref, name: string | undefined) => {
    const char = name === undefined ? undefined : ENTITIES[name];
    if (char === undefined)
      throw new Error(`not a predefined entity reference: ${JSON.stringify(ref)}`);
    return char;
  });
}

function attributesOf(source: string): Record<string, string> {
  const attributes: Record<string, string> = {};
  for (const [, name = '', single, double] of source.matchAll(ATTRIBUTE)) {
    if (name in attributes) throw new Error(`duplicate attribute ${name}`);
    attributes[name] = unescapeXml(single ?? double ?? '');
  }
  return attributes;
}

function match(re: RegExp, xml: string, at: number): RegExpExecArray | null {
  re.lastIndex = at;
  return re.exec(xml);
}

function element(xml: string, at: number): { element: XmlElement; end: number } {
  const start = match(START_TAG, xml, at);
  if (!start)
    throw new Error(`expected a start tag at ${at}: ${JSON.stringify(xml.slice(at, at + 40))}`);
  const [tag, name = '', attrs = '', selfClosing] = start;
  const node: XmlElement = { name, attributes: attributesOf(attrs), children: [], text: '' };
  let pos = at + tag.length;
  if (selfClosing) return { element: node, end: pos };
  for (;;) {
    const raw = match(TEXT, xml, pos)?.[0] ?? '';
    if (raw.includes(']]>')) throw new Error(`']]>' in character data at ${pos}`);
    node.text += unescapeXml(raw);
    pos += raw.length;
    if (pos >= xml.length) throw new Error(`<${name}> is never closed`);
    const close = match(END_TAG, xml, pos);
    if (close) {
      if (close[1] !== name) throw new Error(`</${close[1]}> closes <${name}>`);
      return { element: node, end: pos + close[0].length };
    }
    const child = element(xml, pos);
    node.children.push(child.element);
    pos = child.end;
  }
}

export function parseXml(xml: string): XmlElement {
  const lead = /^\s*/.exec(xml)?.[0].length ?? 0;
  const { element: root, end } = element(xml, lead);
  if (xml.slice(end).trim() !== '') throw new Error(`content after the root element at ${end}`);
  return root;
}

/** Every element as a path of names with its attribute names: the document's shape, values left out. */
export function shapeOf(node: XmlElement, parent = ''): string[] {
  const path = `${parent}/${node.name}`;
  const own = `${path}[${Object.keys(node.attributes).sort().join(',')}]`;
  return [own, ...node.children.flatMap((child) => shapeOf(child, path))];
}

export function child(node: XmlElement, name: string): XmlElement {
  const found = node.children.filter((c) => c.name === name);
  if (found.length !== 1) throw new Error(`<${node.name}> has ${found.length} <${name}> children`);
  return found[0]!;
}
