/** One column of a table: its header, and what a row shows in it. */
export interface Column<T> {
  header: string;
  cell: (row: T) => string;
}

// A cell shows what the API answered, which may hold anything a remote cluster said: control
// characters (a newline, a terminal escape) must not break the table or reach the terminal.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

/** A cell as it may be printed: `-` for nothing, control characters as `?`. */
export const clean = (cell: string) => (cell === '' ? '-' : cell.replace(CONTROL, '?'));

/** Pure: the rows as aligned columns under their headers, two spaces apart, one row a line. */
export function table<T>(columns: readonly Column<T>[], rows: readonly T[]): string {
  const lines = [
    columns.map((c) => c.header),
    ...rows.map((row) => columns.map((c) => clean(c.cell(row)))),
  ];
  const widths = columns.map((_, i) => Math.max(...lines.map((line) => line[i]!.length)));
  return lines
    .map((line) =>
      line
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** A column of one field of the row, as text (null and undefined as `-`). */
export function field<T, K extends keyof T & string>(
  header: string,
  key: K,
  show: (value: NonNullable<T[K]>) => string = String,
): Column<T> {
  return {
    header,
    cell: (row) => (row[key] === null || row[key] === undefined ? '-' : show(row[key])),
  };
}

/** An ISO time as `YYYY-MM-DD hh:mm:ssZ`: to the second, as an operator reads it. */
export const when = (iso: string | Date) =>
  `${(typeof iso === 'string' ? iso : iso.toISOString()).slice(0, 19).replace('T', ' ')}Z`;

export const yesNo = (b: boolean) => (b ? 'yes' : 'no');

/** `k=v,k2=v2`, sorted by key. */
export const pairsText = (tags: Record<string, string>) =>
  Object.entries(tags)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
