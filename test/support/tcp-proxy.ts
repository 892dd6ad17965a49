/**
 * A TCP proxy that can make a server slow: every byte, each way, is held `delayMs` before it is passed
 * on, in order. In front of the Kafka broker's proxied listener (scripts/infra.sh advertises that
 * listener at the proxy's address, so a client that bootstraps through the proxy keeps using it), it
 * makes a slow broker: requests written late, acknowledgements arriving after the client gave up.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface ProxyAddress {
  host: string;
  port: number;
}

export function parseAddress(hostPort: string): ProxyAddress {
  const [host, port] = hostPort.split(':');
  if (host === undefined || port === undefined || !/^\d+$/.test(port)) throw new Error(`not a host:port: ${hostPort}`);
  return { host, port: Number(port) };
}

/** The proxy address and its broker listener, as `scripts/infra.sh env` prints them. */
export function kafkaProxyAddresses(env: NodeJS.ProcessEnv = process.env): { listen: ProxyAddress; target: ProxyAddress } {
  return {
    listen: parseAddress(env.TXOUTBOX_TEST_KAFKA_PROXY_ADDRESS ?? '127.0.0.1:9095'),
    target: parseAddress(env.TXOUTBOX_TEST_KAFKA_PROXIED_LISTENER ?? '127.0.0.1:9096'),
  };
}

export class DelayingTcpProxy {
  /** How long each chunk, either way, is held before it is passed on. */
  delayMs = 0;
  /** Only what the server sends is held (its answers arrive late; what it is sent, at once). */
  delayRepliesOnly = false;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly listen: ProxyAddress,
    private readonly target: ProxyAddress,
  ) {}

  async start(): Promise<void> {
    const server = createServer((client) => this.pipe(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.listen.port, this.listen.host, () => resolve());
    });
    this.server = server;
  }

  /** Closes the listening socket and every connection through it. */
  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = undefined;
  }

  private pipe(client: Socket): void {
    const upstream = connect(this.target.port, this.target.host);
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      // Either side gone: so is the other (a broker restart ends its clients' connections).
      socket.on('error', () => undefined);
      socket.on('close', () => (socket === client ? upstream : client).destroy());
    }
    this.forward(client, upstream, false);
    this.forward(upstream, client, true);
  }

  /** Passes `from`'s data on to `to`, each chunk `delayMs` after it came, never before the one ahead of it. */
  private forward(from: Socket, to: Socket, replies: boolean): void {
    let releaseAt = 0;
    from.on('data', (chunk) => {
      releaseAt = Math.max(releaseAt, Date.now() + (replies || !this.delayRepliesOnly ? this.delayMs : 0));
      const wait = releaseAt - Date.now();
      if (wait <= 0) to.write(chunk);
      else setTimeout(() => to.destroyed || to.write(chunk), wait);
    });
  }
}
