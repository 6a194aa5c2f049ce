import fc from 'fast-check';
import type { z } from 'zod';

// Valid inputs made from a procedure's own zod schema, so a test that calls every procedure
// (an authorisation matrix, a fuzz) follows its schema as it changes instead of restating it.

interface Def {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  element?: z.ZodType;
  keyType?: z.ZodType;
  valueType?: z.ZodType;
  options?: z.ZodType[];
  entries?: Record<string, string | number>;
  values?: unknown[];
  in?: z.ZodType;
  checks?: { _zod: { def: Check } }[];
}
interface Check {
  check: string;
  format?: string;
  pattern?: RegExp;
  value?: number;
  minimum?: number;
  maximum?: number;
}
interface Zod {
  def: Def;
  optin?: 'optional';
}
const zod = (s: z.ZodType) => (s as unknown as { _zod: Zod })._zod;

/** What a schema's checks bound: a number's range, a length's, a text's pattern. */
interface Bounds {
  min?: number;
  max?: number;
  int?: boolean;
  pattern?: RegExp;
}
function boundsOf(def: Def): Bounds {
  const b: Bounds = {};
  for (const { _zod } of def.checks ?? []) {
    const c = _zod.def;
    if (c.check === 'greater_than' || c.check === 'min_length') b.min = c.value ?? c.minimum;
    if (c.check === 'less_than' || c.check === 'max_length') b.max = c.value ?? c.maximum;
    if (c.check === 'number_format') b.int = c.format === 'safeint' || c.format === 'int32';
    if (c.check === 'string_format' && c.format === 'regex') b.pattern = c.pattern;
  }
  return b;
}

/** Values for fields by name, wherever they stand (`project`, `image`, ...). */
export type Picks = Record<string, fc.Arbitrary<unknown>>;

/** Kept small: a valid example, not a stress test. */
const MOST_ITEMS = 3;
const LONGEST_TEXT = 16;

function number(b: Bounds): fc.Arbitrary<number> {
  const min = Math.max(b.min ?? 0, -1000);
  // Near the bottom of its range: a count of replicas, not of atoms.
  const max = Math.min(b.max ?? min + 100, min + 100);
  return b.int
    ? fc.integer({ min: Math.ceil(min), max: Math.floor(max) })
    : fc.double({ min, max, noNaN: true });
}

function text(b: Bounds): fc.Arbitrary<string> {
  if (b.pattern) return fc.stringMatching(b.pattern);
  const minLength = b.min ?? 0;
  return fc.string({ minLength, maxLength: Math.min(b.max ?? LONGEST_TEXT, minLength + 16) });
}

function arbitrary(schema: z.ZodType, picks: Picks): fc.Arbitrary<unknown> {
  const { def } = zod(schema);
  const bounds = boundsOf(def);
  switch (def.type) {
    case 'object': {
      const shape = def.shape ?? {};
      const fields = Object.fromEntries(
        Object.entries(shape).map(([k, s]) => [k, picks[k] ?? arbitrary(s, picks)]),
      );
      const required = Object.keys(shape).filter((k) => zod(shape[k]!).optin !== 'optional');
      return fc.record(fields, { requiredKeys: required, noNullPrototype: true });
    }
    case 'optional':
    case 'default':
    case 'prefault':
      return arbitrary(def.innerType!, picks);
    case 'nullable':
      return fc.oneof(fc.constant(null), arbitrary(def.innerType!, picks));
    case 'pipe':
      return arbitrary(def.in!, picks);
    case 'union':
      return fc.oneof(...def.options!.map((o) => arbitrary(o, picks)));
    case 'array':
      return fc.array(arbitrary(def.element!, picks), {
        minLength: bounds.min ?? 0,
        maxLength: Math.min(bounds.max ?? MOST_ITEMS, Math.max(bounds.min ?? 0, MOST_ITEMS)),
      });
    case 'record':
      return fc.dictionary(
        arbitrary(def.keyType!, picks) as fc.Arbitrary<string>,
        arbitrary(def.valueType!, picks),
        { maxKeys: 2, noNullPrototype: true },
      );
    case 'enum':
      return fc.constantFrom(...Object.values(def.entries!));
    case 'literal':
      return fc.constantFrom(...def.values!);
    case 'string':
      return text(bounds);
    case 'number':
      return number(bounds);
    case 'boolean':
      return fc.boolean();
    case 'unknown':
      return fc.constant(null);
    default:
      throw new Error(`no example for a zod ${def.type}: add it to test/support/zod-examples.ts`);
  }
}

/**
 * Inputs `schema` accepts: each field from its own schema, or from `picks` by name; what the
 * schema's refinements still refuse (sums that must agree, ...) is left out.
 */
export function validInputs(schema: z.ZodType | undefined, picks: Picks = {}) {
  if (!schema) return fc.constant(undefined);
  return arbitrary(schema, picks).filter((v) => schema.safeParse(v).success);
}

/** The input schema of each procedure of a router, by path (`services.create`). */
export function inputSchemas(router: { _def: { procedures: object } }) {
  const procedures = router._def.procedures as Record<string, { _def: { inputs: z.ZodType[] } }>;
  return Object.fromEntries(
    Object.entries(procedures).map(([path, p]) => [path, p._def.inputs[0]]),
  ) as Record<string, z.ZodType | undefined>;
}
