import type { Host, HostRegistration } from '../activities/index.ts';
import { probe } from './proxies.ts';

/** Reads the host's capacity through its driver and records it. */
export async function registerHost(host: HostRegistration): Promise<Host> {
  return probe.registerHost(host);
}
