import type { NativeConnection } from '@temporalio/worker';
import {
  SEARCH_ATTRIBUTE_NAMES,
  SEARCH_ATTRIBUTES,
  type SearchAttributeName,
} from '../common/search-attributes.ts';

/** gRPC status codes the operator service answers with. */
const PERMISSION_DENIED = 7;
const UNIMPLEMENTED = 12;

/** The operator service's enum value (temporal.api.enums.v1.IndexedValueType) of each type. */
const INDEXED_VALUE_TYPE = { KEYWORD: 2 } as const;

/** The command an administrator runs to register `names` when vagoth may not. */
export function registerCommand(namespace: string, names: readonly SearchAttributeName[]): string {
  const flags = names.map((n) => `--name ${n} --type ${titleCase(SEARCH_ATTRIBUTES[n])}`);
  return `temporal operator search-attribute create --namespace ${namespace} ${flags.join(' ')}`;
}

const titleCase = (type: string) => type[0] + type.slice(1).toLowerCase();

/** The dev server's flags that register every attribute as it starts (`--search-attribute`). */
export function devServerFlags(): string[] {
  return SEARCH_ATTRIBUTE_NAMES.flatMap((n) => [
    '--search-attribute',
    `${n}=${titleCase(SEARCH_ATTRIBUTES[n])}`,
  ]);
}

/**
 * Registers in `namespace` whichever of vagoth's search attributes it lacks (the operator
 * service), and answers which it added. Without them a workflow that sets one fails each of
 * its tasks, so when they are missing and this caller may not add them, it throws with the
 * command an administrator runs instead. Workers starting together may race to add them:
 * whatever an add answers, the attributes are listed again, and present is enough.
 */
export async function ensureSearchAttributes(
  connection: Pick<NativeConnection, 'operatorService'>,
  namespace: string,
): Promise<SearchAttributeName[]> {
  const { operatorService } = connection;
  const missingNow = async () => {
    try {
      const { customAttributes } = await operatorService.listSearchAttributes({ namespace });
      return SEARCH_ATTRIBUTE_NAMES.filter((n) => !(n in (customAttributes ?? {})));
    } catch (err) {
      throw refused(err, namespace, SEARCH_ATTRIBUTE_NAMES);
    }
  };
  const missing = await missingNow();
  if (missing.length === 0) return [];
  const searchAttributes = Object.fromEntries(
    missing.map((n) => [n, INDEXED_VALUE_TYPE[SEARCH_ATTRIBUTES[n]]]),
  );
  try {
    await operatorService.addSearchAttributes({ namespace, searchAttributes });
  } catch (err) {
    // Another worker may have added them meanwhile (servers answer that in several ways).
    if ((await missingNow()).length > 0) throw refused(err, namespace, missing);
  }
  return missing;
}

/** The error to stop with when the operator service would not list or add them. */
function refused(err: unknown, namespace: string, missing: readonly SearchAttributeName[]) {
  const code = (err as { code?: number }).code;
  if (code !== PERMISSION_DENIED && code !== UNIMPLEMENTED) return err;
  return new Error(
    `vagoth cannot check or add its search attributes in Temporal namespace ${namespace}: ` +
      `have an administrator run\n  ${registerCommand(namespace, missing)}`,
    { cause: err },
  );
}
