import { spawn, type ChildProcess } from 'node:child_process';
import { timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import ssh2, { type Connection, type ServerChannel } from 'ssh2';

// ssh2 is CommonJS, and Node's ESM loader does not see these among its named exports.
const { Server, utils } = ssh2;

export interface SshKeyPair {
  /** OpenSSH private key. */
  privateKey: string;
  /** `ssh-ed25519 AAAA...`, as in authorized_keys. */
  publicKey: string;
}

export function generateSshKey(): SshKeyPair {
  for (;;) {
    const { private: privateKey, public: publicKey } = utils.generateKeyPairSync('ed25519');
    // ssh2 1.17's keygen drops a leading zero byte of the key (about 1 in 256), and then
    // cannot read its own key back: draw again.
    if (
      !(utils.parseKey(privateKey) instanceof Error) &&
      !(utils.parseKey(publicKey) instanceof Error)
    )
      return { privateKey, publicKey };
  }
}

export interface SshHostOptions {
  /** The one command the host runs: the agent's path, as the driver sends it. */
  agent: string;
  user: string;
  /** The client key allowed to log in. */
  authorizedKey: string;
  /** The host's own key; a fresh one by default. */
  hostKey?: SshKeyPair;
  env?: NodeJS.ProcessEnv;
  /**
   * Behave as an sshd that does not honour `signal` requests (OpenSSH before 7.9): a signal is
   * ignored, and a command outlives its channel's close by the client, as OpenSSH's does.
   */
  ignoreSignals?: boolean;
}

export interface SshHost {
  port: number;
  hostKey: SshKeyPair;
  /** The host's line for a known_hosts file. */
  knownHostsLine: string;
  /** Connections that logged in so far: a driver that reuses its connection makes one. */
  logins(): number;
  /** PIDs of the agents running now. */
  runningAgents(): number[];
  /** Cuts every client connection, as a host reboot or a network failure would. */
  dropConnections(): void;
  close(): Promise<void>;
}

function sameKey(
  presented: { algo: string; data: Buffer },
  allowed: ReturnType<typeof utils.parseKey>,
) {
  if (allowed instanceof Error) return false;
  const want = allowed.getPublicSSH();
  return (
    presented.algo === allowed.type &&
    presented.data.length === want.length &&
    timingSafeEqual(presented.data, want)
  );
}

/** Runs the agent for one exec request: the channel is its stdin, stdout, stderr and exit status. */
function runAgent(
  command: string,
  channel: ServerChannel,
  env: NodeJS.ProcessEnv,
  agents: Set<ChildProcess>,
  killOnClose: boolean,
) {
  const child = spawn(command, [], { stdio: ['pipe', 'pipe', 'pipe'], env });
  agents.add(child);
  channel.pipe(child.stdin);
  child.stdout.pipe(channel, { end: false });
  child.stderr.pipe(channel.stderr, { end: false });
  child.stdin.on('error', () => {});
  child.on('error', (err) => channel.stderr.write(`${err.message}\n`));
  child.on('close', (code, signal) => {
    agents.delete(child);
    if (signal) channel.exit(signal.replace(/^SIG/, ''), false, '');
    else channel.exit(code ?? 127);
    channel.end();
  });
  // sshd's answer to a client that gives up on the channel: the command goes too.
  channel.on('close', () => {
    if (killOnClose && agents.has(child)) child.kill('SIGKILL');
  });
  return child;
}

/**
 * An SSH server in this process (ssh2's Server: the real protocol, real key exchange and
 * public key authentication) that runs one command, the stand-in geats agent, per exec.
 */
export async function startSshHost(options: SshHostOptions): Promise<SshHost> {
  const hostKey = options.hostKey ?? generateSshKey();
  const allowed = utils.parseKey(options.authorizedKey);
  const agents = new Set<ChildProcess>();
  const connections = new Set<Connection>();
  let logins = 0;
  const server = new Server({ hostKeys: [hostKey.privateKey] }, (client) => {
    connections.add(client);
    client.on('close', () => connections.delete(client));
    client.on('error', () => {});
    client.on('authentication', (ctx) => {
      if (ctx.method !== 'publickey' || ctx.username !== options.user || !sameKey(ctx.key, allowed))
        return ctx.reject(['publickey']);
      if (ctx.signature && !(allowed instanceof Error)) {
        if (allowed.verify(ctx.blob!, ctx.signature, ctx.hashAlgo) !== true) return ctx.reject();
      }
      ctx.accept();
    });
    client.on('ready', () => {
      logins++;
      client.on('session', (accept) => {
        const session = accept();
        let child: ChildProcess | undefined;
        // ssh2's Server drops every request a client makes after its EOF; OpenSSH (7.9 and
        // later) still takes a `signal` then, and the driver's request always follows its EOF.
        session.on('eof', () => {
          (session as unknown as { _ending: boolean })._ending = false;
        });
        session.on('signal', (_accept, _reject, info) => {
          if (!options.ignoreSignals) child?.kill(`SIG${info.name}` as NodeJS.Signals);
        });
        session.once('exec', (acceptExec, reject, info) => {
          if (info.command !== options.agent) return reject();
          const env = { ...process.env, ...options.env };
          child = runAgent(info.command, acceptExec(), env, agents, !options.ignoreSignals);
        });
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    hostKey,
    knownHostsLine: `[127.0.0.1]:${port} ${hostKey.publicKey.split(' ').slice(0, 2).join(' ')}`,
    logins: () => logins,
    runningAgents: () => [...agents].flatMap((a) => (a.pid ? [a.pid] : [])),
    dropConnections() {
      for (const c of connections) c.end();
    },
    async close() {
      for (const a of agents) a.kill('SIGKILL');
      for (const c of connections) c.end();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
