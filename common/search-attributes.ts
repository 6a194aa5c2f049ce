// The search attributes vagoth's workflows keep, so an operator finds them in the Temporal UI's
// list by a filter (`VagothOperationStatus = "failed"`). Every one is a Keyword: matched whole,
// as a filter compares it. A pure module: workflows, the API and the workers all use it.

/** Each attribute, and what it holds. */
export const SEARCH_ATTRIBUTES = {
  /** What the workflow runs for: `vm`, `host`, `monitor` or `image`. */
  VagothKind: 'KEYWORD',
  /** A VM's state (registry's words: `running`, `migrating`, `failed`, `gone`...). */
  VagothVmState: 'KEYWORD',
  /** The host a VM is on, or the host a host workflow runs for. */
  VagothHost: 'KEYWORD',
  /** The kind of the operation in progress, else of the last one (`create`, `migrate`...). */
  VagothOperation: 'KEYWORD',
  /** That operation's status: `running`, `completed` or `failed`. */
  VagothOperationStatus: 'KEYWORD',
  /** The failure type (common/vocabulary.ts) of the last operation, while it is a failure. */
  VagothFailure: 'KEYWORD',
} as const;

export type SearchAttributeName = keyof typeof SEARCH_ATTRIBUTES;
export const SEARCH_ATTRIBUTE_NAMES = Object.keys(SEARCH_ATTRIBUTES) as SearchAttributeName[];

/** Values of some attributes: a name left out is not set (or is removed, in an update). */
export type Attributes = Partial<Record<SearchAttributeName, string>>;

export type OperationStatus = 'running' | 'completed' | 'failed';

/** The SDK's typed key of an attribute (structurally `defineSearchAttributeKey(name, type)`). */
export function attributeKey(name: SearchAttributeName) {
  return { name, type: SEARCH_ATTRIBUTES[name] };
}

/** The pairs a workflow is started with: every attribute `values` sets. */
export function attributePairs(values: Attributes) {
  return SEARCH_ATTRIBUTE_NAMES.flatMap((name) => {
    const value = values[name];
    return value === undefined ? [] : [{ key: attributeKey(name), value }];
  });
}

/**
 * The update that turns `shown` into `wanted`: a pair for each attribute whose value changed,
 * null for one `wanted` no longer sets. Empty when nothing changed: no upsert, no event.
 */
export function attributeUpdates(shown: Attributes, wanted: Attributes) {
  return SEARCH_ATTRIBUTE_NAMES.flatMap((name) =>
    shown[name] === wanted[name] ? [] : [{ key: attributeKey(name), value: wanted[name] ?? null }],
  );
}
