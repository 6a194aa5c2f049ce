import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../config.ts';

describe('how libvirt hosts wipe volumes (VAGOTH_LIBVIRT_WIPE, VAGOTH_LIBVIRT_WIPE_MIB_S)', () => {
  it('is streamed zeros over every byte, uncapped, by default', () => {
    expect(loadConfig({}).drivers.libvirt).toMatchObject({ wipe: 'stream', wipeMiBPerSecond: 0 });
  });

  it('takes libvirt’s own wipe and a cap', () => {
    const env = { VAGOTH_LIBVIRT_WIPE: 'libvirt', VAGOTH_LIBVIRT_WIPE_MIB_S: '200' };
    expect(loadConfig(env).drivers.libvirt).toMatchObject({
      wipe: 'libvirt',
      wipeMiBPerSecond: 200,
    });
  });

  it.each([
    ['VAGOTH_LIBVIRT_WIPE', 'shred'],
    ['VAGOTH_LIBVIRT_WIPE_MIB_S', '-1'],
    ['VAGOTH_LIBVIRT_WIPE_MIB_S', '1.5'],
    ['VAGOTH_LIBVIRT_WIPE_MIB_S', 'fast'],
  ])('refuses %s=%j, naming it', (name, value) => {
    let error: unknown;
    try {
      loadConfig({ [name]: value });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems.join('\n')).toContain(name);
  });
});
