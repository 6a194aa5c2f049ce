import { describe, expect, it } from 'vitest';
import { checkHostUri, CLOSED_HOST_URIS, type HostUriPolicy } from '../../drivers/host-uri.ts';
import { formatLibvirtUri, parseLibvirtUri } from '../../drivers/libvirt/uri.ts';

describe('parseLibvirtUri', () => {
  it.each([
    ['qemu:///system', 'qemu:///system'],
    ['qemu:///session', 'qemu:///session'],
    ['qemu+ssh://root@hv1/system', 'qemu+ssh://root@hv1/system'],
    ['QEMU+SSH://root@HV1.Example.com:2222/system', 'qemu+ssh://root@hv1.example.com:2222/system'],
    ['qemu+tls://10.0.0.1/system', 'qemu+tls://10.0.0.1/system'],
    ['qemu+ssh://[fd00::1]/system', 'qemu+ssh://[fd00::1]/system'],
    [
      'qemu+unix:///system?socket=/run/x/libvirt-sock',
      'qemu+unix:///system?socket=%2Frun%2Fx%2Flibvirt-sock',
    ],
    [
      'qemu+ssh://h/system?sshauth=agent,privkey&mode=direct',
      'qemu+ssh://h/system?mode=direct&sshauth=agent%2Cprivkey',
    ],
    [
      'qemu+ssh://h/system?known_hosts_verify=normal',
      'qemu+ssh://h/system?known_hosts_verify=normal',
    ],
    ['test:///default', 'test:///default'],
    ['test:///tmp/hosts/sim-1.xml', 'test:///tmp/hosts/sim-1.xml'],
    // One spelling of a path: libvirt reads test:////x as test:///x.
    ['test:////tmp/hosts/sim-1.xml', 'test:///tmp/hosts/sim-1.xml'],
    [
      'test+unix:///default?socket=/tmp/d/libvirt-sock',
      'test+unix:///default?socket=%2Ftmp%2Fd%2Flibvirt-sock',
    ],
  ])('accepts %s as %s', (uri, canonical) => {
    expect(formatLibvirtUri(parseLibvirtUri(uri))).toBe(canonical);
  });

  it.each([
    ['no scheme', '/var/run/libvirt/libvirt-sock', /libvirt URI/],
    ['one slash', 'qemu:/system', /libvirt URI/],
    ['a space', 'qemu:///sys tem', /libvirt URI/],
    ['an empty URI', '', /libvirt URI/],
    ['the ext transport', 'qemu+ext:///system?command=/bin/sh', /ext transport runs a program/],
    ['command=', 'qemu+ssh://h/system?command=/bin/sh', /command runs a program/],
    ['COMMAND= in capitals', 'qemu+ssh://h/system?COMMAND=/bin/sh', /command runs a program/],
    ['command= %-escaped', 'qemu+ssh://h/system?%63ommand=/bin/sh', /command runs a program/],
    [
      'command= after a ;',
      'qemu+ssh://h/system?mode=auto;command=/bin/sh',
      /command runs a program/,
    ],
    ['netcat=', 'qemu+ssh://h/system?netcat=/bin/sh', /netcat runs a program/],
    ['no_verify=', 'qemu+tls://h/system?no_verify=1', /no_verify skips verifying/],
    ['keyfile=', 'qemu+ssh://h/system?keyfile=/root/.ssh/id_rsa', /keyfile names a file/],
    ['pkipath=', 'qemu+tls://h/system?pkipath=/etc', /pkipath names a directory/],
    ['known_hosts=', 'qemu+libssh://h/system?known_hosts=/etc/passwd', /known_hosts names a file/],
    [
      'known_hosts_verify=ignore',
      'qemu+libssh://h/system?known_hosts_verify=ignore',
      /known_hosts_verify/,
    ],
    [
      'known_hosts_verify=auto',
      'qemu+libssh://h/system?known_hosts_verify=auto',
      /known_hosts_verify/,
    ],
    ['no_tty=', 'qemu+ssh://h/system?no_tty=1', /no_tty/],
    ['name=', 'qemu+ssh://h/system?name=test:///etc/passwd', /name makes the daemon/],
    ['an unknown parameter', 'qemu+ssh://h/system?root=/x', /"root" is not one vagoth passes/],
    ['a parameter given twice', 'qemu+unix:///system?socket=/a&socket=/b', /twice/],
    ['a relative socket', 'qemu+unix:///system?socket=run/sock', /socket has a value/],
    ['a malformed escape', 'qemu+ssh://h/system?mode=%zz', /malformed/],
    ['an unknown driver', 'esx://vcenter/?no_verify=1', /driver "esx"/],
    ['an unknown transport', 'qemu+http://h/system', /transport "http"/],
    ['a password', 'qemu+ssh://root:secret@h/system', /no password/],
    ['a fragment', 'qemu:///system#x', /libvirt URI/],
    ['qemu:///embed', 'qemu:///embed?root=/tmp/x', /root|\/system or \/session/],
    ['a qemu path other than system or session', 'qemu:///etc/passwd', /\/system or \/session/],
    ['.. in a test path', 'test:///tmp/../etc/passwd', /without \. or \.\. parts/],
    ['a %-escape in a path', 'test:///tmp/%2e%2e/etc/passwd', /path must be absolute/],
    [
      'a file behind a daemon',
      'test+unix:///etc/passwd?socket=/tmp/s',
      /test\+<transport>:\/\/\/default/,
    ],
    ['port 0', 'qemu+ssh://h:0/system', /port/],
  ])('refuses %s', (_, uri, reason) => {
    expect(() => parseLibvirtUri(uri)).toThrow(reason);
  });
});

const policy: HostUriPolicy = {
  geatsAgents: ['/opt/geats/bin', '/usr/local/bin/geats-agent'],
  simulatedHosts: true,
  simulatedHostDirs: ['/var/lib/vagoth'],
  libvirtSocketDirs: ['/run/vagoth'],
};

describe('checkHostUri', () => {
  it.each([
    ['geats', 'geats:///opt/geats/bin/agent'],
    ['geats', 'geats:///usr/local/bin/geats-agent'],
    ['geats', 'geats+ssh://root@hv7/usr/bin/geats-agent'],
    ['libvirt', 'qemu+ssh://root@hv1/system'],
    ['libvirt', 'test:///default'],
    ['libvirt', 'test:///var/lib/vagoth/hosts/sim-1.xml'],
    ['libvirt', 'qemu+unix:///system?socket=/run/vagoth/libvirt-sock'],
  ] as const)('lets %s host %s through', (driver, uri) => {
    expect(() => checkHostUri(driver, uri, policy)).not.toThrow();
  });

  it.each([
    ['geats', 'geats:///usr/bin/id', policy, /VAGOTH_GEATS_AGENTS/],
    ['geats', 'geats:///usr/bin/env', policy, /VAGOTH_GEATS_AGENTS/],
    // A name that starts like an allowed directory is not inside it.
    ['geats', 'geats:///opt/geats/bin-evil/agent', policy, /VAGOTH_GEATS_AGENTS/],
    ['geats', 'geats:///usr/local/bin/geats-agent2', policy, /VAGOTH_GEATS_AGENTS/],
    ['geats', 'geats:///opt/geats/bin/agent', CLOSED_HOST_URIS, /VAGOTH_GEATS_AGENTS/],
    ['libvirt', 'test:///etc/passwd', policy, /under its data directory/],
    ['libvirt', 'test:///var/lib/vagoth-other/x.xml', policy, /under its data directory/],
    ['libvirt', 'test:///default', CLOSED_HOST_URIS, /VAGOTH_ALLOW_SIMULATED_HOSTS/],
    ['libvirt', 'qemu+unix:///system?socket=/etc/libvirt-sock', policy, /SOCKET_DIRS/],
    ['libvirt', 'qemu+unix:///system?socket=/run/vagoth/../x/sock', policy, /SOCKET_DIRS/],
    ['libvirt', 'qemu+ext:///system?command=/bin/sh', policy, /ext transport/],
  ] as const)('refuses %s host %s', (driver, uri, p, reason) => {
    expect(() => checkHostUri(driver, uri, p)).toThrow(reason);
  });
});
