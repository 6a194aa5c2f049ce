import { describe, expect, it } from 'vitest';
import {
  hostsWithVolumes,
  recordedVolumes,
  volumeKey,
  volumesOn,
} from '../../registry/vm-volumes.ts';

const root = { pool: 'vagoth', name: 'vagoth-1-disk0.img' };
const data = { pool: 'fast:ssd', name: 'dir/vagoth-1-disk1.img' };

describe('volume keys name the host a volume lives on', () => {
  it('read back as written, whatever the pool and name hold', () => {
    const keys = [volumeKey('hv-1', root), volumeKey('hv_2.x', data), 'ip:10.0.0.1'];
    expect(recordedVolumes(keys)).toEqual([
      { host: 'hv-1', ...root },
      { host: 'hv_2.x', ...data },
    ]);
  });

  it("answer only a host's own volumes; a key of before counts as on the VM's host", () => {
    const keys = [volumeKey('a', root), volumeKey('b', root), 'vol:old/vagoth-1-disk2.img'];
    expect(volumesOn(keys, 'a', 'b')).toEqual([root]);
    expect(volumesOn(keys, 'b', 'b')).toEqual([root, { pool: 'old', name: 'vagoth-1-disk2.img' }]);
    expect(volumesOn(keys, 'c', 'b')).toEqual([]);
    expect(volumesOn(keys, null, null)).toEqual([]);
  });

  it("list the hosts to wipe on, the VM's own last, and none for a key of before on no host", () => {
    const keys = [volumeKey('z', root), volumeKey('b', root), volumeKey('a', root)];
    expect(hostsWithVolumes(keys, 'b')).toEqual(['a', 'z', 'b']);
    expect(hostsWithVolumes(keys, null)).toEqual(['a', 'b', 'z']);
    expect(hostsWithVolumes(['vol:old/x'], null)).toEqual([]);
    expect(hostsWithVolumes(['vol:old/x'], 'h')).toEqual(['h']);
  });
});
