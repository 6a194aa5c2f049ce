import net from 'node:net';

/** A service's health check: a TCP connect, or an HTTP GET answered 2xx/3xx. */
export type Health = { tcp: number } | { http: { port: number; path: string } };

/**
 * Whether an instance passed its check; `why` says what failed, in the service layer's words.
 * `unprobeable`: no check could be sent (no address, or one outside the operator's ranges),
 * which says nothing of the instance's health.
 */
export type ProbeResult = { ok: true } | { ok: false; why: string; unprobeable?: true };

export type Prober = (health: Health, address: string) => Promise<ProbeResult>;

/**
 * Probes from the service layer's worker, to addresses the operator admits only
 * (`VAGOTH_SERVICES_PROBE_CIDRS`): an instance's address is the cloud's, but a caller picks its
 * network and may pick its IP, so nothing outside those ranges is ever sent a packet. No
 * redirect is followed; nothing the instance answered is kept or shown, only whether it passed.
 */
export function makeProber(options: { cidrs: readonly string[]; timeoutMs: number }): Prober {
  const allowed = new net.BlockList();
  for (const cidr of options.cidrs) {
    const [base, prefix] = cidr.split('/');
    allowed.addSubnet(base!, Number(prefix), net.isIPv6(base!) ? 'ipv6' : 'ipv4');
  }
  return async (health, address) => {
    const family = net.isIPv4(address) ? 'ipv4' : net.isIPv6(address) ? 'ipv6' : null;
    if (family === null) return { ok: false, why: 'it has no address to probe', unprobeable: true };
    if (!allowed.check(address, family)) {
      return {
        ok: false,
        why: 'its address is outside VAGOTH_SERVICES_PROBE_CIDRS',
        unprobeable: true,
      };
    }
    return 'tcp' in health
      ? tcpProbe(address, health.tcp, options.timeoutMs)
      : httpProbe(address, health.http, options.timeoutMs);
  };
}

function tcpProbe(host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (result: ProbeResult) => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(timeoutMs, () => done({ ok: false, why: `tcp ${port}: no answer in time` }));
    socket.once('connect', () => done({ ok: true }));
    socket.once('error', (err: NodeJS.ErrnoException) =>
      done({ ok: false, why: `tcp ${port}: ${err.code ?? 'refused'}` }),
    );
  });
}

async function httpProbe(
  host: string,
  check: { port: number; path: string },
  timeoutMs: number,
): Promise<ProbeResult> {
  const where = net.isIPv6(host) ? `[${host}]` : host;
  try {
    const answer = await fetch(`http://${where}:${check.port}${check.path}`, {
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    await answer.body?.cancel();
    return answer.status >= 200 && answer.status < 400
      ? { ok: true }
      : { ok: false, why: `http ${check.port}: answered ${answer.status}` };
  } catch (err) {
    const e = err as { name?: string; cause?: { code?: string } };
    const why = e.name === 'TimeoutError' ? 'no answer in time' : (e.cause?.code ?? 'refused');
    return { ok: false, why: `http ${check.port}: ${why}` };
  }
}
