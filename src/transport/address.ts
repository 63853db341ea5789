import type { IncomingMessage } from 'node:http';
import proxyaddr from 'proxy-addr';

/**
 * The client's address as limits see it: the TCP peer, or — only when that peer is a trusted proxy
 * (TRUST_PROXY) — the nearest untrusted address in X-Forwarded-For. Trusting the header from
 * anyone would let every request name its own address and walk around per-address limits.
 */
export function addressResolver(trust: readonly string[]): (req: IncomingMessage) => string {
  const trusted = trust.length > 0 ? proxyaddr.compile([...trust]) : () => false;
  return (req) => {
    try {
      return proxyaddr(req, trusted);
    } catch {
      return req.socket?.remoteAddress ?? 'unknown';
    }
  };
}
