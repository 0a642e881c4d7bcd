import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { backoffMs, keepOpen, socketUrl } from "./socket";
import { FakeWebSocket } from "./testing/fakesocket";

beforeEach(() => {
  vi.useFakeTimers();
  vi.stubGlobal("WebSocket", FakeWebSocket);
  FakeWebSocket.opened = [];
});
afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

/** Milliseconds until the next socket opens after the current one closed. */
function delayUntilNextSocket(): number {
  const before = FakeWebSocket.opened.length;
  let waited = 0;
  while (FakeWebSocket.opened.length === before) {
    if (waited > 60_000) throw new Error("no reconnect within a minute");
    vi.advanceTimersByTime(100);
    waited += 100;
  }
  return waited;
}

describe("socketUrl", () => {
  it("uses wss for a page served over https, ws otherwise", () => {
    expect(socketUrl({ protocol: "https:", host: "studio.example" }, "/ws/x/")).toBe("wss://studio.example/ws/x/");
    expect(socketUrl({ protocol: "http:", host: "h:8000" }, "/ws/x/?a=1")).toBe("ws://h:8000/ws/x/?a=1");
  });
});

describe("keepOpen", () => {
  it("reconnects after growing delays while the server stays away, at most 15 s apart", () => {
    keepOpen({ url: () => "ws://h/ws/x/", onMessage: () => undefined });
    const delays: number[] = [];
    for (let i = 0; i < 7; i++) {
      FakeWebSocket.last().serverClose(1006);
      delays.push(delayUntilNextSocket());
    }
    expect(delays).toEqual([500, 1000, 2000, 4000, 8000, 15_000, 15_000]);
    expect(delays.map((_, n) => backoffMs(n))).toEqual(delays);
  });

  it("starts the delays over once a socket opens", () => {
    keepOpen({ url: () => "ws://h/ws/x/", onMessage: () => undefined });
    FakeWebSocket.last().serverClose(1006);
    delayUntilNextSocket();
    FakeWebSocket.last().serverClose(1006);
    expect(delayUntilNextSocket()).toBe(1000);
    FakeWebSocket.last().accept();
    FakeWebSocket.last().serverClose(1012);
    expect(delayUntilNextSocket()).toBe(500);
  });

  it.each([1000, 1006, 1011, 1012, 4400])("reconnects after a close with code %i, and says which", (code) => {
    const closes: number[] = [];
    keepOpen({ url: () => "ws://h/ws/x/", onMessage: () => undefined, onClose: (c) => void closes.push(c) });
    FakeWebSocket.last().accept();
    FakeWebSocket.last().serverClose(code);
    delayUntilNextSocket();
    expect(closes).toEqual([code]);
    expect(FakeWebSocket.opened).toHaveLength(2);
  });

  it("asks for the URL again at every attempt, so a reconnect resumes where the last socket left off", () => {
    let last = 0;
    const seen: unknown[] = [];
    keepOpen({
      url: () => `ws://h/ws/builds/7/?after=${last}`,
      onMessage: (data) => {
        seen.push(data);
        last = Number(JSON.parse(data as string).seq);
      },
    });
    FakeWebSocket.last().accept();
    FakeWebSocket.last().send({ seq: 1 });
    FakeWebSocket.last().send({ seq: 2 });
    FakeWebSocket.last().serverClose(1012);
    delayUntilNextSocket();
    expect(FakeWebSocket.opened.map((s) => s.url)).toEqual(["ws://h/ws/builds/7/?after=0", "ws://h/ws/builds/7/?after=2"]);
    expect(seen).toEqual(['{"seq":1}', '{"seq":2}']);
  });

  it("tells when it is open and when it is not", () => {
    const states: boolean[] = [];
    keepOpen({
      url: () => "ws://h/ws/x/",
      onMessage: () => undefined,
      onOpen: () => states.push(true),
      onClose: () => void states.push(false),
    });
    FakeWebSocket.last().accept();
    FakeWebSocket.last().serverClose(1012);
    delayUntilNextSocket();
    FakeWebSocket.last().accept();
    expect(states).toEqual([true, false, true]);
  });

  it("ends, without reconnecting, when onClose says the stream is done", () => {
    keepOpen({ url: () => "ws://h/ws/x/", onMessage: () => undefined, onClose: () => false });
    FakeWebSocket.last().accept();
    FakeWebSocket.last().serverClose(1000);
    vi.advanceTimersByTime(60_000);
    expect(FakeWebSocket.opened).toHaveLength(1);
  });

  it("stop() closes the open socket, delivers nothing more and never reconnects", () => {
    const seen: unknown[] = [];
    const connection = keepOpen({ url: () => "ws://h/ws/x/", onMessage: (data) => seen.push(data) });
    const socket = FakeWebSocket.last();
    socket.accept();
    connection.stop();
    expect(socket.closedByPage).toBe(true);
    socket.send({ late: true });
    vi.advanceTimersByTime(60_000);
    expect(seen).toEqual([]);
    expect(FakeWebSocket.opened).toHaveLength(1);
  });

  it("stop() while waiting to reconnect cancels the reconnect", () => {
    const connection = keepOpen({ url: () => "ws://h/ws/x/", onMessage: () => undefined });
    FakeWebSocket.last().serverClose(1006);
    connection.stop();
    vi.advanceTimersByTime(60_000);
    expect(FakeWebSocket.opened).toHaveLength(1);
  });
});
