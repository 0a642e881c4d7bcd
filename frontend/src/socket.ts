// The studio's one reconnecting websocket: a build's event stream, a project's build list and a
// class's dashboard all keep their socket open through this. A socket that closes, whatever its
// code, is opened again after a growing delay: 1012 ("service restart") is what the server sends
// when its channel layer fails under the socket, and a refused or dropped connection (1006) or an
// application code (4xxx) is retried the same way, since what refused it may pass later. Only the
// caller knows when a stream is done (a finished build): it says so from onClose, or by stop().

/** The part of the browser's WebSocket used here. */
export interface SocketLike {
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code?: number }) => void) | null;
  close(): void;
}

export interface PageLocation {
  protocol: string;
  host: string;
}

export interface KeepOpenOptions {
  /** Asked afresh before every attempt, so a reconnect can resume where the last socket left off. */
  url: () => string;
  /** Each message's data, as it came (a string for the studio's JSON messages). */
  onMessage: (data: unknown) => void;
  onOpen?: () => void;
  /** Every close, with its code; returning false ends the connection instead of reconnecting. */
  onClose?: (code: number) => boolean | void;
  /** Delay before reconnect attempt n (0-based); backoffMs unless given. */
  backoff?: (attempt: number) => number;
}

export interface Connection {
  /** Closes the socket and cancels any reconnect still to come. */
  stop(): void;
}

/** Delay before reconnect attempt n (0-based): doubling from 500 ms, at most 15 s. */
export function backoffMs(attempt: number): number {
  return Math.min(15_000, 500 * 2 ** attempt);
}

/** ws: or wss: (as the page itself was served) URL for a path on the page's own host. */
export function socketUrl(location: PageLocation, path: string): string {
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}${path}`;
}

/** Opens a socket to options.url() and keeps it open until stop() or onClose says it is done. */
export function keepOpen(options: KeepOpenOptions): Connection {
  const backoff = options.backoff ?? backoffMs;
  // Counts the attempts since the last socket that opened: one that opens starts the delays over.
  let attempt = 0;
  let stopped = false;
  let socket: SocketLike | null = null;
  let timer: ReturnType<typeof setTimeout> | null = null;

  const connect = (): void => {
    timer = null;
    if (stopped) return;
    const current = new WebSocket(options.url()) as unknown as SocketLike;
    socket = current;
    current.onopen = () => {
      attempt = 0;
      options.onOpen?.();
    };
    current.onmessage = (ev) => {
      if (!stopped) options.onMessage(ev.data);
    };
    current.onclose = (ev) => {
      if (socket === current) socket = null;
      if (stopped) return;
      // 1005 is what the browser reports for a close frame that carried no code.
      if (options.onClose?.(ev.code ?? 1005) === false) {
        stopped = true;
        return;
      }
      timer = setTimeout(connect, backoff(attempt++));
    };
  };
  connect();
  return {
    stop: () => {
      stopped = true;
      if (timer !== null) clearTimeout(timer);
      timer = null;
      socket?.close();
      socket = null;
    },
  };
}
