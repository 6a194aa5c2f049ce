import type { Host, HostAddress } from '../activities/index.ts';
import { steps } from './proxies.ts';

/** Reads the host's capacity through its driver and records it. */
export async function registerHost(host: HostAddress): Promise<Host> {
  return steps.registerHost(host);
}
