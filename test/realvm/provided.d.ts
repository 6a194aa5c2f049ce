import 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    /** What the real-VM tier needs, or why this machine cannot run it. */
    realvm: { skip: string | null; uri: string; kernel: string; initrd: string };
  }
}
