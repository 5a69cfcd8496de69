import type { IncomingMessage, ServerResponse } from 'node:http';
import { createSecureServer, type Http2SecureServer, type Http2ServerRequest, type ServerHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Etcd3 } from 'etcd3';
import { CERTS_PREFIX, CHALLENGES_PREFIX, CertificateTable, ChallengeTable } from './certificates.js';
import { EtcdPrefixMirror } from './etcd-prefix.js';
import { domainOfHost } from './host.js';

const CHALLENGE_PATH = '/.well-known/acme-challenge/';

/** An answer the router gives itself on plain HTTP: an ACME answer, or a redirect to HTTPS. */
export interface PlainAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface RouterTlsOptions {
  client: Etcd3;
  /** Where HTTPS listens (0: a free port); absent: no HTTPS, only ACME answers on plain HTTP. */
  port?: number;
  host: string;
  keepAliveTimeoutMs: number;
  onRequest: (req: IncomingMessage, res: ServerResponse) => void;
  onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  log: (line: string) => void;
}

/**
 * The router's TLS side: certificates per domain from etcd (`/quarry/certs/<domain>`), picked
 * by SNI, on an HTTPS listener that speaks HTTP/2 and HTTP/1.1 (ALPN) and hands requests to
 * the same routing as plain HTTP; and on plain HTTP, ACME HTTP-01 answers from etcd and a
 * 308 to HTTPS for every domain that has a certificate.
 */
export class RouterTls {
  readonly certs: CertificateTable;
  private readonly challenges = new ChallengeTable();
  private readonly mirrors: EtcdPrefixMirror[];
  private server: Http2SecureServer | undefined;
  /** The HTTPS port listened on, when there is one. */
  port: number | undefined;

  private constructor(private readonly options: RouterTlsOptions) {
    this.certs = new CertificateTable(options.log);
    this.mirrors = [new EtcdPrefixMirror(options.client, CHALLENGES_PREFIX, (kvs) => this.challenges.apply(kvs), options.log)];
    if (options.port !== undefined) {
      this.mirrors.push(new EtcdPrefixMirror(options.client, CERTS_PREFIX, (kvs) => this.certs.apply(kvs), options.log));
    }
  }

  static async start(options: RouterTlsOptions): Promise<RouterTls> {
    const tls = new RouterTls(options);
    // Not awaited: like the routes, etcd may come later; until then no certificate is known.
    for (const mirror of tls.mirrors) void mirror.start();
    if (options.port !== undefined) await tls.listen(options.port);
    return tls;
  }

  private async listen(port: number): Promise<void> {
    const { onRequest, onUpgrade, keepAliveTimeoutMs } = this.options;
    const server = createSecureServer({
      allowHTTP1: true,
      // No certificate of its own: a name without one (or no name) fails the handshake,
      // rather than being shown another domain's certificate.
      SNICallback: (servername, done) => {
        const context = this.certs.contextFor(servername);
        if (context) done(null, context);
        else done(new Error(`no certificate for ${servername}`));
      },
    }, (req: Http2ServerRequest, res) => {
      const h2 = req.httpVersionMajor === 2;
      if (h2 && req.headers.host === undefined && req.authority) req.headers.host = req.authority;
      // A connection is for the name its handshake was for: another domain's request on it
      // (HTTP/2 connection reuse) is sent back to make its own connection (RFC 9110 §15.5.20).
      const sni = (req.socket as TLSSocket).servername;
      if (typeof sni === 'string' && this.certs.contextFor(sni) !== this.certs.contextFor(req.headers.host)) {
        res.writeHead(421, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end(`This connection is for ${sni}, not ${domainOfHost(req.headers.host) ?? 'no host'}.\n`);
        return;
      }
      onRequest(req as unknown as IncomingMessage, res as unknown as ServerResponse);
    });
    server.on('upgrade', onUpgrade);
    server.setTimeout(keepAliveTimeoutMs);
    // A handshake that failed (no certificate, a scanner): the client was told; nothing to log.
    server.on('tlsClientError', () => undefined);
    server.on('secureConnection', (socket: TLSSocket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    server.on('session', (session) => {
      this.sessions.add(session);
      session.once('close', () => this.sessions.delete(session));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, this.options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  /**
   * What plain HTTP answers itself for this request: the key authorisation of an ACME
   * challenge HQ is answering, or (with an HTTPS listener) a 308 to HTTPS for a domain with
   * a certificate. Undefined: route it as usual.
   */
  plainAnswer(req: IncomingMessage): PlainAnswer | undefined {
    const url = req.url ?? '/';
    const domain = domainOfHost(req.headers.host);
    if (domain === undefined || !url.startsWith('/')) return undefined;
    if (url.startsWith(CHALLENGE_PATH)) {
      const token = url.slice(CHALLENGE_PATH.length).split('?')[0]!;
      const answer = this.challenges.answer(domain, token);
      if (answer !== undefined) return { status: 200, headers: { 'Content-Type': 'text/plain' }, body: answer };
      return undefined;
    }
    if (this.port === undefined || !this.certs.contextFor(domain)) return undefined;
    const location = `https://${domain}${this.port === 443 ? '' : `:${this.port}`}${url}`;
    return { status: 308, headers: { Location: location, 'Content-Type': 'text/plain; charset=utf-8' }, body: `${location}\n` };
  }

  async close(graceMs: number): Promise<void> {
    const server = this.server;
    if (server) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // HTTP/2 clients are told to go (GOAWAY) once their streams in flight are done.
      for (const session of this.sessions) session.close();
      const timer = setTimeout(() => {
        // HTTP/2 sessions and HTTP/1.1 sockets alike: whatever is left after the grace.
        for (const socket of this.sockets) socket.destroy();
      }, graceMs);
      await closed;
      clearTimeout(timer);
    }
    await Promise.all(this.mirrors.map((m) => m.close()));
  }

  private readonly sockets = new Set<TLSSocket>();
  private readonly sessions = new Set<ServerHttp2Session>();
}
