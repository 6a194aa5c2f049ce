import 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    templateDatabase: string;
    temporalAddress: string;
    workflowBundle: string;
  }
}
