// The browser's WebSocket, as a test plays both the browser and the server: installed with
// vi.stubGlobal("WebSocket", FakeWebSocket), every socket the page opens is kept in `opened`.
export class FakeWebSocket {
  static opened: FakeWebSocket[] = [];

  static last(): FakeWebSocket {
    const socket = FakeWebSocket.opened.at(-1);
    if (!socket) throw new Error("no socket was opened");
    return socket;
  }

  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number }) => void) | null = null;
  closedByPage = false;

  constructor(readonly url: string) {
    FakeWebSocket.opened.push(this);
  }

  /** The page closes it: like a browser, the close event comes later, without a code. */
  close(): void {
    this.closedByPage = true;
    setTimeout(() => this.onclose?.({ code: 1005 }), 0);
  }

  /** The server accepts the connection. */
  accept(): void {
    this.onopen?.({});
  }

  /** The server sends a JSON message. */
  send(message: unknown): void {
    this.onmessage?.({ data: JSON.stringify(message) });
  }

  /** The server closes with `code` (1006: the connection dropped, or was refused, with no close frame). */
  serverClose(code: number): void {
    this.onclose?.({ code });
  }
}
