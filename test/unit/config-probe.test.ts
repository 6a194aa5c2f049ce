import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../config.ts';

describe('where health checks may go (VAGOTH_SERVICES_PROBE_CIDRS)', () => {
  it('is nowhere unless the operator names ranges', () => {
    expect(loadConfig({}).services.probe).toEqual({ cidrs: [], timeoutMs: 2_000 });
    expect(
      loadConfig({ VAGOTH_SERVICES_PROBE_CIDRS: '127.0.0.0/8, fd00:77::/64' }).services.probe.cidrs,
    ).toEqual(['127.0.0.0/8', 'fd00:77::/64']);
  });

  it('refuses what is not a range, and an IPv6 range that would admit every IPv4 address', () => {
    for (const bad of ['10.0.0.0', '10.0.0.0/33', 'example.com/8', '::/0', '::ffff:0:0/96']) {
      expect(() => loadConfig({ VAGOTH_SERVICES_PROBE_CIDRS: bad })).toThrow(ConfigError);
    }
    expect(() => loadConfig({ VAGOTH_SERVICES_PROBE_CIDRS: 'bad' })).toThrow(
      /VAGOTH_SERVICES_PROBE_CIDRS/,
    );
  });
});
