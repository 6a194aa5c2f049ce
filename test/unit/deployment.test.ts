import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';

// docker-compose.yml as an operator would bring it up: what it exposes, and what it bakes in.
const compose = await readFile('docker-compose.yml', 'utf8');
const lines = compose.split('\n');

/** The entries of every `ports:` list in the file. */
function publishedPorts(): string[] {
  const ports: string[] = [];
  lines.forEach((line, i) => {
    if (!/^\s+ports:\s*$/.test(line)) return;
    const indent = line.search(/\S/);
    for (let j = i + 1; j < lines.length; j++) {
      const entry = lines[j]!;
      if (/^\s*#/.test(entry)) continue;
      if (entry.search(/\S/) <= indent) break;
      ports.push(entry.trim().replace(/^-\s*/, '').replace(/^'|'$/g, ''));
    }
  });
  return ports;
}

describe('docker-compose.yml', () => {
  it('publishes every port on this machine only', () => {
    const ports = publishedPorts();
    expect(ports.length).toBeGreaterThanOrEqual(3);
    for (const port of ports)
      expect(port).toMatch(/^(127\.0\.0\.1|\$\{\w+:-127\.0\.0\.1\}):\d+:\d+$/);
  });

  it('takes every password from the environment, and refuses to start without one', () => {
    const literal = lines.filter(
      (l) => /(PASSWORD|PWD)\s*:/.test(l) && !/\$\{\w+:\?[^}]+\}/.test(l),
    );
    expect(literal).toEqual([]);
    expect(compose).not.toMatch(/postgres:\/\/\w+:\w+@/);
  });

  it('gives vagoth a role of its own that is no superuser', async () => {
    expect(compose).toMatch(/DATABASE_URL: postgres:\/\/vagoth:\$\{VAGOTH_DB_PASSWORD/);
    expect(compose).toMatch(/POSTGRES_USER: temporal\n/);
    const init = await readFile('deploy/postgres-init/10-roles.sh', 'utf8');
    expect(init).toMatch(/CREATE ROLE vagoth LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE/);
    expect(init).toMatch(/CREATE ROLE temporal LOGIN NOSUPERUSER/);
  });

  it('keeps keys and secrets out of the image', async () => {
    const ignored = (await readFile('.dockerignore', 'utf8')).split('\n').map((l) => l.trim());
    for (const pattern of ['secrets/', '.env', '**/*.pem', '**/id_ed25519*', '**/admin-token'])
      expect(ignored).toContain(pattern);
  });
});
