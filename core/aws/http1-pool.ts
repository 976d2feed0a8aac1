/**
 * A lean HTTP/1.1 client for the requests s3-wire.ts sends by hand: keep-alive connections to one origin, one
 * request at a time on each, every answer read whole (status, headers, a small body). Node's http client spends
 * about 150 µs of CPU on each small request in its general machinery (ClientRequest and IncomingMessage
 * streams, agent bookkeeping, a timeout and an abort listener per request); written and read on the socket
 * directly the same PUT costs about 35 µs (measured here against a trivial server, 64 requests in flight).
 * A small object costs two requests: its PUT and VALIDATE's HEAD.
 *
 * Only what the answers to S3's PUT and HEAD need: bodies framed by Content-Length or chunked, or read to the
 * end of the connection; none for HEAD, 204 and 304; interim 1xx answers skipped; `connection: close`
 * honoured. Errors carry the codes the retry policy knows (`ECONNRESET`, `ETIMEDOUT`, ...): a connection the
 * server closed while it sat unused, found closed by the request sent on it before any answer, is retried
 * once at once on a new connection (as Node's agent users meet it as `ECONNRESET`).
 */
import net from "node:net";
import tls from "node:tls";

export interface Http1Request {
  readonly method: string;
  /** The path as sent (already encoded), with its query if any. */
  readonly path: string;
  /** Lower-case names, `host` among them; sent as given, after a check for characters a header cannot carry. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: Buffer | undefined;
}

export interface Http1Response {
  readonly status: number;
  /** Lower-case names; a header sent more than once has its values joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

export interface Http1PoolOptions {
  /** Connections open at once; more requests wait for one. */
  readonly maxSockets: number;
  /** Opening a connection (TCP, and TLS) may take this long. */
  readonly connectTimeoutMs: number;
  /** A request whose connection stays silent this long fails (`TimeoutError`, `ETIMEDOUT`). */
  readonly idleTimeoutMs: number;
  /**
   * How long an unused connection may be used again, shortened to a second less than the server's own
   * keep-alive hint (`keep-alive: timeout=N`) so that the server does not close it first; an older one is
   * closed when next met. (An unused connection is closed after `idleTimeoutMs` in any case.)
   * @default 4000
   */
  readonly keepAliveMs?: number;
  /**
   * The certificates an https: endpoint's must chain to (an endpoint of a private CA).
   * @default Node's store, with NODE_EXTRA_CA_CERTS (what the SDK's https agent trusts)
   */
  readonly ca?: string | undefined;
}

/** An error of the connection or of the protocol, shaped for the retry policy (`code`, `name`). */
export class Http1Error extends Error {
  constructor(
    message: string,
    readonly code: string,
    name = "Http1Error",
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = name;
  }
}

const DEFAULT_KEEP_ALIVE_MS = 4_000;
/** Bigger heads or bodies than this are no answer of S3 to a PUT or a HEAD: the connection is given up. */
const MAX_HEAD_BYTES = 64 * 1024;
const MAX_BODY_BYTES = 1024 * 1024;
const CRLF = Buffer.from("\r\n");
const HEAD_END = Buffer.from("\r\n\r\n");
// What Node's http client refuses too: a token for a name; no control characters but tab in a value.
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
const BAD_PATH = /[^\u0021-\u00ff]/;

export class Http1Pool {
  private readonly idle: Connection[] = [];
  private readonly waiting: Waiter[] = [];
  private readonly watched = new WeakMap<AbortSignal, Set<Connection>>();
  private readonly all = new Set<Connection>();
  private open = 0;
  private closed = false;
  private readonly isTls: boolean;
  private readonly host: string;
  private readonly port: number;

  constructor(
    /** The origin: `http:` or `https:`, host and port. */
    readonly origin: URL,
    readonly options: Http1PoolOptions,
  ) {
    this.isTls = origin.protocol === "https:";
    if (!this.isTls && origin.protocol !== "http:") {
      throw new Error(`${origin.href}: only http: and https: endpoints can be reached by a signed request`);
    }
    // URL keeps an IPv6 host in brackets; sockets take it without.
    this.host = origin.hostname.replace(/^\[(.*)\]$/, "$1");
    this.port = origin.port ? Number(origin.port) : this.isTls ? 443 : 80;
  }

  /** The answer to one request. Fails with the connection's error, a timeout, or the signal's abort. */
  async request(req: Http1Request, signal?: AbortSignal): Promise<Http1Response> {
    const head = requestHead(req);
    for (let attempt = 1; ; attempt++) {
      if (signal?.aborted) throw abortError(signal);
      const conn = await this.acquire(signal, attempt > 1);
      if (signal?.aborted) {
        this.release(conn, true);
        throw abortError(signal);
      }
      try {
        return await this.exchange(conn, req, head, signal);
      } catch (err) {
        // Sent again once, on a new connection: the request reached no server.
        if (attempt === 1 && err instanceof Http1Error && err.name === "StaleConnection") continue;
        throw err;
      }
    }
  }

  /** Closes every connection; requests still in flight fail. */
  destroy(): void {
    this.closed = true;
    for (const c of this.idle.splice(0)) c.socket.destroy();
    const closed = new Http1Error(`${this.origin.origin}: the client was closed`, "ECONNRESET");
    for (const w of this.waiting.splice(0)) w.reject(closed);
    for (const c of this.all) c.socket.destroy();
  }

  /** A connection for a request: the last one unused (or a new one when `fresh`), else a new one, else wait. */
  private acquire(signal: AbortSignal | undefined, fresh: boolean): Connection | Promise<Connection> {
    if (this.closed) throw new Http1Error(`${this.origin.origin}: the client was closed`, "ECONNRESET");
    if (fresh && this.open < this.options.maxSockets) return this.connect();
    for (let c = this.idle.pop(); c; c = this.idle.pop()) {
      if (performance.now() - c.idleSince <= this.keepAliveMs(c)) return c;
      c.socket.destroy();
      // Its place is taken again below: the close comes later, and must not count it twice.
      c.counted = false;
      this.open--;
    }
    if (this.open < this.options.maxSockets) return this.connect();
    return new Promise<Connection>((resolve, reject) => {
      const w: Waiter = { resolve, reject };
      this.waiting.push(w);
      if (!signal) return;
      const onAbort = () => {
        const i = this.waiting.indexOf(w);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(abortError(signal));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      w.resolve = (c) => {
        signal.removeEventListener("abort", onAbort);
        resolve(c);
      };
    });
  }

  private connect(): Connection {
    this.open++;
    const o = { host: this.host, port: this.port };
    const socket = this.isTls
      ? tls.connect({
          ...o,
          servername: net.isIP(this.host) ? undefined : this.host,
          ALPNProtocols: ["http/1.1"],
          ...(this.options.ca === undefined ? {} : { ca: this.options.ca }),
        })
      : net.connect(o);
    const conn = new Connection(socket, this);
    this.all.add(conn);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 1000);
    socket.setTimeout(this.options.connectTimeoutMs);
    socket.once(this.isTls ? "secureConnect" : "connect", () => {
      conn.connected = true;
      // One timer for the connection's life, kept by the socket: silence while a request waits fails it,
      // silence while unused closes the connection.
      socket.setTimeout(this.options.idleTimeoutMs);
    });
    return conn;
  }

  private keepAliveMs(conn: Connection): number {
    const own = this.options.keepAliveMs ?? DEFAULT_KEEP_ALIVE_MS;
    return conn.serverKeepAliveMs === undefined ? own : Math.max(1, Math.min(own, conn.serverKeepAliveMs));
  }

  private exchange(
    conn: Connection,
    req: Http1Request,
    head: string,
    signal: AbortSignal | undefined,
  ): Promise<Http1Response> {
    return new Promise<Http1Response>((resolve, reject) => {
      conn.begin(req.method, req.path, resolve, reject, signal);
      conn.socket.ref();
      if (signal) this.watch(signal).add(conn);
      const s = conn.socket;
      if (req.body && req.body.length > 0) {
        s.cork();
        s.write(head, "latin1");
        s.write(req.body);
        s.uncork();
      } else {
        s.write(head, "latin1");
      }
    });
  }

  /** The busy connections of a signal: one listener per signal (a batch's), not one per request. */
  private watch(signal: AbortSignal): Set<Connection> {
    let set = this.watched.get(signal);
    if (!set) {
      const conns = new Set<Connection>();
      set = conns;
      this.watched.set(signal, conns);
      signal.addEventListener(
        "abort",
        () => {
          for (const c of conns) c.fail(abortError(signal));
          conns.clear();
        },
        { once: true },
      );
    }
    return set;
  }

  /** A connection whose exchange has ended: kept for the next request when it can be, else closed. */
  release(conn: Connection, keep: boolean): void {
    if (conn.signal) this.watched.get(conn.signal)?.delete(conn);
    conn.signal = undefined;
    if (!keep || this.closed) {
      conn.socket.destroy();
      return;
    }
    const w = this.waiting.shift();
    if (w) {
      w.resolve(conn);
      return;
    }
    conn.idleSince = performance.now();
    conn.socket.unref();
    this.idle.push(conn);
  }

  /** A connection that closed: its place goes to a waiting request, if any. */
  closedConnection(conn: Connection): void {
    if (conn.signal) this.watched.get(conn.signal)?.delete(conn);
    this.all.delete(conn);
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
    // A connection dropped as too old has given its place up already.
    if (!conn.counted) return;
    conn.counted = false;
    this.open--;
    const w = this.waiting.shift();
    if (!w) return;
    try {
      w.resolve(this.connect());
    } catch (err) {
      w.reject(err);
    }
  }

  describe(method: string, path: string): string {
    return `${method} ${this.origin.origin}${path}`;
  }

  get idleTimeoutMs(): number {
    return this.options.idleTimeoutMs;
  }

  get connectTimeoutMs(): number {
    return this.options.connectTimeoutMs;
  }
}

interface Waiter {
  resolve: (c: Connection) => void;
  reject: (err: unknown) => void;
}

/** One connection and the exchange on it, if any; parses the answer as it arrives. */
class Connection {
  connected = false;
  /** Answers read whole on this connection: a connection that served one may have been closed since. */
  served = 0;
  serverKeepAliveMs: number | undefined;
  signal: AbortSignal | undefined;
  /** When it was last released unused (performance.now()). */
  idleSince = 0;
  /** Whether it still counts among the pool's open connections. */
  counted = true;
  private method = "";
  private path = "";
  private resolve: ((r: Http1Response) => void) | null = null;
  private reject: ((err: unknown) => void) | null = null;
  private buf: Buffer | null = null;
  private gotBytes = false;
  private error: Error | null = null;
  // The answer being read.
  private status = 0;
  private headers: Record<string, string> = {};
  private keepAlive = true;
  private mode: "head" | "length" | "chunk-size" | "chunk-data" | "trailers" | "until-close" = "head";
  private remaining = 0;
  private body: Buffer[] = [];
  private bodyBytes = 0;

  constructor(
    readonly socket: net.Socket,
    private readonly pool: Http1Pool,
  ) {
    socket.on("data", (d: Buffer) => this.onData(d));
    socket.on("end", () => this.onEnd());
    socket.on("timeout", () => this.onTimeout());
    socket.on("error", (err) => {
      this.error ??= err;
    });
    socket.on("close", () => this.onClose());
  }

  get busy(): boolean {
    return this.resolve !== null;
  }

  begin(
    method: string,
    path: string,
    resolve: (r: Http1Response) => void,
    reject: (err: unknown) => void,
    signal: AbortSignal | undefined,
  ): void {
    this.method = method;
    this.path = path;
    this.resolve = resolve;
    this.reject = reject;
    this.signal = signal;
    this.gotBytes = false;
    this.status = 0;
    this.headers = {};
    this.keepAlive = true;
    this.mode = "head";
    this.body = [];
    this.bodyBytes = 0;
  }

  /** Ends the exchange with an error and closes the connection. */
  fail(err: unknown): void {
    const reject = this.reject;
    this.resolve = null;
    this.reject = null;
    this.socket.destroy();
    reject?.(err);
  }

  private onData(d: Buffer): void {
    if (!this.resolve) {
      // Nothing was asked: a server that speaks out of turn cannot be trusted with the next request.
      this.socket.destroy();
      return;
    }
    this.gotBytes = true;
    this.buf = this.buf ? Buffer.concat([this.buf, d]) : d;
    try {
      this.parse();
    } catch (err) {
      this.fail(err);
    }
  }

  private parse(): void {
    for (;;) {
      const buf = this.buf;
      if (!buf || buf.length === 0) return;
      switch (this.mode) {
        case "head": {
          const end = buf.indexOf(HEAD_END);
          if (end < 0) {
            if (buf.length > MAX_HEAD_BYTES) throw this.protocolError("an answer's head over 64 KiB");
            return;
          }
          const next = this.readHead(buf.toString("latin1", 0, end));
          this.buf = buf.subarray(end + 4);
          if (next === "done") {
            this.finish();
            return;
          }
          continue;
        }
        case "length": {
          const n = Math.min(this.remaining, buf.length);
          this.take(buf.subarray(0, n));
          this.remaining -= n;
          this.buf = buf.subarray(n);
          if (this.remaining === 0) this.finish();
          return;
        }
        case "chunk-size": {
          const eol = buf.indexOf(CRLF);
          if (eol < 0) {
            if (buf.length > 1024) throw this.protocolError("a chunk size line over 1 KiB");
            return;
          }
          const line = buf.toString("latin1", 0, eol);
          const size = Number.parseInt(line, 16);
          if (!/^[0-9a-fA-F]+/.test(line) || !Number.isSafeInteger(size)) {
            throw this.protocolError(`a chunk size of ${JSON.stringify(line.slice(0, 40))}`);
          }
          this.buf = buf.subarray(eol + 2);
          if (size === 0) {
            this.mode = "trailers";
          } else {
            this.remaining = size;
            this.mode = "chunk-data";
          }
          continue;
        }
        case "chunk-data": {
          if (this.remaining > 0) {
            const n = Math.min(this.remaining, buf.length);
            this.take(buf.subarray(0, n));
            this.remaining -= n;
            this.buf = buf.subarray(n);
            if (this.remaining > 0) return;
            continue;
          }
          if (buf.length < 2) return;
          if (buf[0] !== 13 || buf[1] !== 10) throw this.protocolError("a chunk not ended by CRLF");
          this.buf = buf.subarray(2);
          this.mode = "chunk-size";
          continue;
        }
        case "trailers": {
          // No trailers: CRLF at once; else trailer lines up to an empty one (dropped: S3 sends none we read).
          if (buf.length >= 2 && buf[0] === 13 && buf[1] === 10) {
            this.buf = buf.subarray(2);
            this.finish();
            return;
          }
          const end = buf.indexOf(HEAD_END);
          if (end < 0) {
            if (buf.length > MAX_HEAD_BYTES) throw this.protocolError("trailers over 64 KiB");
            return;
          }
          this.buf = buf.subarray(end + 4);
          this.finish();
          return;
        }
        case "until-close":
          this.take(buf);
          this.buf = null;
          return;
      }
    }
  }

  /** Reads a head: an interim (1xx) answer to skip, an answer without a body, or one whose body follows. */
  private readHead(text: string): "interim" | "done" | "body" {
    let eol = text.indexOf("\r\n");
    if (eol < 0) eol = text.length;
    const c12 = text.charCodeAt(12);
    const minor = text.charCodeAt(7);
    const status = Number(text.slice(9, 12));
    if (
      !text.startsWith("HTTP/1.") ||
      (minor !== 48 && minor !== 49) ||
      text.charCodeAt(8) !== 32 ||
      !(status >= 100 && status <= 999) ||
      !(eol === 12 || c12 === 32)
    ) {
      throw this.protocolError(`a status line ${JSON.stringify(text.slice(0, Math.min(eol, 80)))}`);
    }
    if (status < 200) return "interim";
    const headers: Record<string, string> = {};
    let last = "";
    for (let pos = eol + 2; pos < text.length; ) {
      let next = text.indexOf("\r\n", pos);
      if (next < 0) next = text.length;
      const first = text.charCodeAt(pos);
      if ((first === 32 || first === 9) && last) {
        // An obsolete folded line continues the header before it.
        headers[last] = `${headers[last]} ${text.slice(pos, next).trim()}`;
      } else if (next > pos) {
        const colon = text.indexOf(":", pos);
        if (colon <= pos || colon > next) {
          throw this.protocolError(
            `a header line ${JSON.stringify(text.slice(pos, Math.min(next, pos + 80)))}`,
          );
        }
        const name = text.slice(pos, colon).trim().toLowerCase();
        const value = text.slice(colon + 1, next).trim();
        const had = headers[name];
        headers[name] = had === undefined ? value : `${had}, ${value}`;
        last = name;
      }
      pos = next + 2;
    }
    this.status = status;
    this.headers = headers;
    const connection = (headers.connection ?? "").toLowerCase();
    this.keepAlive =
      minor === 49 ? !/(?:^|,)\s*close\s*(?:,|$)/.test(connection) : /keep-alive/.test(connection);
    const alive = headers["keep-alive"];
    const hint = alive === undefined ? undefined : /(?:^|,)\s*timeout=(\d+)/i.exec(alive)?.[1];
    if (hint !== undefined) this.serverKeepAliveMs = Number(hint) * 1000 - 1000;
    if (this.method === "HEAD" || status === 204 || status === 304) return "done";
    const te = headers["transfer-encoding"];
    if (te !== undefined) {
      if (!/(?:^|,)\s*chunked\s*$/i.test(te)) throw this.protocolError(`transfer-encoding ${te}`);
      this.mode = "chunk-size";
      return "body";
    }
    const cl = headers["content-length"];
    if (cl !== undefined) {
      if (!/^\d+$/.test(cl)) throw this.protocolError(`content-length ${JSON.stringify(cl)}`);
      this.remaining = Number(cl);
      if (this.remaining > MAX_BODY_BYTES) throw this.protocolError(`a body of ${cl} bytes`);
      if (this.remaining === 0) return "done";
      this.mode = "length";
      return "body";
    }
    this.mode = "until-close";
    this.keepAlive = false;
    return "body";
  }

  private take(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.bodyBytes += chunk.length;
    if (this.bodyBytes > MAX_BODY_BYTES) throw this.protocolError("a body over 1 MiB");
    this.body.push(chunk);
  }

  private finish(): void {
    const resolve = this.resolve;
    const body = this.body.length === 1 ? (this.body[0] as Buffer) : Buffer.concat(this.body);
    const res: Http1Response = { status: this.status, headers: this.headers, body };
    // Bytes past the answer would be an answer to nothing: such a connection is not used again.
    const keep = this.keepAlive && (this.buf === null || this.buf.length === 0);
    this.buf = null;
    this.resolve = null;
    this.reject = null;
    this.served++;
    this.pool.release(this, keep);
    resolve?.(res);
  }

  private onEnd(): void {
    if (this.resolve && this.mode === "until-close") {
      this.finish();
      return;
    }
    this.socket.destroy();
  }

  private onTimeout(): void {
    if (!this.resolve) {
      // Unused for the keep-alive time (or never connected while unused): closed, quietly.
      this.socket.destroy();
      return;
    }
    const what = this.pool.describe(this.method, this.path);
    this.fail(
      this.connected
        ? new Http1Error(`${what}: no answer for ${this.pool.idleTimeoutMs} ms`, "ETIMEDOUT", "TimeoutError")
        : new Http1Error(
            `${what}: could not connect in ${this.pool.connectTimeoutMs} ms`,
            "ETIMEDOUT",
            "TimeoutError",
          ),
    );
  }

  private onClose(): void {
    const reject = this.reject;
    this.resolve = null;
    this.reject = null;
    this.pool.closedConnection(this);
    if (!reject) return;
    const what = this.pool.describe(this.method, this.path);
    const cause = this.error ?? undefined;
    const code = (cause as NodeJS.ErrnoException | null)?.code ?? "ECONNRESET";
    if (this.served > 0 && !this.gotBytes) {
      // A kept-alive connection closed by the server while unused, found so by this request: sent again.
      reject(
        new Http1Error(`${what}: the kept-alive connection was closed`, code, "StaleConnection", { cause }),
      );
      return;
    }
    const message = cause
      ? `${what}: ${cause.message}`
      : `${what}: the connection closed before the answer was complete`;
    reject(new Http1Error(message, code, "Http1Error", { cause }));
  }

  private protocolError(what: string): Http1Error {
    this.keepAlive = false;
    return new Http1Error(
      `${this.pool.describe(this.method, this.path)}: the server sent ${what}, which is no HTTP/1.1 answer this client reads`,
      "EPROTO",
    );
  }
}

/** The request line and headers, checked as Node's http client checks them. */
function requestHead(req: Http1Request): string {
  if (BAD_PATH.test(req.path)) {
    throw new Http1Error(
      `the path ${JSON.stringify(req.path)} has characters a request line cannot carry`,
      "EINVAL",
    );
  }
  let head = `${req.method} ${req.path} HTTP/1.1\r\n`;
  for (const name in req.headers) {
    const value = req.headers[name] as string;
    if (!HEADER_NAME.test(name)) {
      throw new Http1Error(`the header name ${JSON.stringify(name)} is not an HTTP token`, "EINVAL");
    }
    if (BAD_VALUE.test(value)) {
      throw new Http1Error(
        `the header ${name} has characters a header cannot carry (control characters, or beyond latin-1)`,
        "EINVAL",
      );
    }
    head += `${name}: ${value}\r\n`;
  }
  return `${head}\r\n`;
}

function abortError(signal: AbortSignal): Error {
  return new Http1Error("The operation was aborted", "ABORT_ERR", "AbortError", { cause: signal.reason });
}
