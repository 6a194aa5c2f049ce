import type { Host, HostRegistration } from '../common/messages.ts';
import { probe } from './proxies.ts';

/** Reads the host's capacity through its driver and records it. */
export async function registerHost(host: HostRegistration): Promise<Host> {
  return probe.registerHost(host);
}
