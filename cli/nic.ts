/** `default,ip=10.0.0.5,mac=52:54:00:00:00:01` -> a NIC of vms.create. */
export function parseNic(spec: string): { network: string; ip?: string; mac?: string } {
  const [network, ...options] = spec.split(',');
  const nic: { network: string; ip?: string; mac?: string } = { network: network ?? '' };
  for (const option of options) {
    const [key, value] = option.split(/=(.*)/s);
    if ((key !== 'ip' && key !== 'mac') || !value) {
      throw new Error(
        `--nic ${spec}: expected network[,ip=ADDRESS][,mac=MAC], not ${JSON.stringify(option)}`,
      );
    }
    nic[key] = value;
  }
  return nic;
}
