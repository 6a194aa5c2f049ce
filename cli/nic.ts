type Nic = { network: string; ip?: string; mac?: string };

/**
 * `default,ip=10.0.0.5,mac=52:54:00:00:00:01` -> a NIC of vms.create; `keys`: the options the
 * API takes (a cloud instance's NIC takes no MAC).
 */
export function parseNic(spec: string, keys: ReadonlyArray<'ip' | 'mac'> = ['ip', 'mac']): Nic {
  const [network, ...options] = spec.split(',');
  const nic: Nic = { network: network ?? '' };
  for (const option of options) {
    const [key, value] = option.split(/=(.*)/s);
    if (!keys.includes(key as 'ip') || !value) {
      const shape = keys.map((k) => `[,${k}=${k === 'ip' ? 'ADDRESS' : 'MAC'}]`).join('');
      throw new Error(`--nic ${spec}: expected network${shape}, not ${JSON.stringify(option)}`);
    }
    nic[key as 'ip'] = value;
  }
  return nic;
}
