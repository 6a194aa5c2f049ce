import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findExecutable, socketAnswers } from '../support/libvirtd.ts';
import { startPrivateLibvirtd, type PrivateLibvirtd } from '../support/private-libvirtd.ts';
import { virsh } from './host.ts';

const missing = ['libvirtd', 'virsh'].filter((p) => !findExecutable(p));
const skip = missing.length > 0 ? `${missing.join(', ')} not installed` : null;

// One libvirtd per simulated host, each on its own socket: what a multi-host test needs.
describe.skipIf(skip)(
  skip ? `private libvirt daemons (skipped: ${skip})` : 'private libvirt daemons',
  () => {
    const started: PrivateLibvirtd[] = [];
    afterAll(async () => {
      await Promise.all(started.map((d) => d.stop()));
    });

    it('serve one test-driver host each, and stop without touching the other', async () => {
      const [a, b] = await Promise.all([startPrivateLibvirtd(), startPrivateLibvirtd()]);
      started.push(a, b);
      expect(a.socket).not.toBe(b.socket);
      const xml = path.join(a.dir, 'sim-vm.xml');
      await writeFile(
        xml,
        `<domain type='test'><name>sim-vm</name><memory unit='MiB'>64</memory><os><type>hvm</type></os></domain>`,
      );
      // The test driver forgets a host when its last connection closes: one virsh, two commands.
      const onA = await virsh(a.uri('test'), `define ${xml}; list --all --name`);
      expect(onA.split(/\s+/)).toContain('sim-vm');
      expect((await virsh(b.uri('test'), 'list --all --name')).split(/\s+/)).not.toContain(
        'sim-vm',
      );

      await a.stop();
      expect(await socketAnswers(a.socket)).toBe(false);
      expect(await socketAnswers(b.socket)).toBe(true);
      expect((await virsh(b.uri('test'), 'list --all --name')).split(/\s+/)).toContain('test');
    });
  },
);
