import postgres from 'postgres';

export type Sql = postgres.Sql;

export interface ConnectOptions {
  max?: number;
}

export function connect(url: string, options: ConnectOptions = {}): Sql {
  return postgres(url, {
    max: options.max ?? 10,
    onnotice: () => {},
    // Keep jsonb round-trips as plain objects.
    transform: { undefined: null },
  });
}

/** A connection or a transaction: query functions take either. */
export type Queryable = Sql | postgres.TransactionSql;

/** Binds a value as jsonb (postgres.js's JSONValue type cannot see through interfaces). */
export function jsonb(sql: Queryable, value: object) {
  return sql.json(value as postgres.JSONValue);
}

/** Whether `err` is PostgreSQL's error of this SQLSTATE (`23505`: a unique key taken). */
export function isPgError(err: unknown, code: string): err is postgres.PostgresError {
  return err instanceof postgres.PostgresError && err.code === code;
}
