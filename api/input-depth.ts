/** Deeper than any procedure's input goes (a definition's JSON included). */
export const MAX_INPUT_DEPTH = 32;

/**
 * Whether a parsed JSON value nests deeper than `max` arrays and objects. Iterative: the
 * value is a caller's, and a recursive walk is what a deep one is made to break.
 */
export function inputDepthExceeds(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth >= max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}
