import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { backoffMs } from "./socket";
import { buildSocketUrl, BuildStore, connectBuild } from "./store";
import { FakeWebSocket } from "./testing/fakesocket";

const sync = { schedule: (flush: () => void) => flush() };
const started = { type: "build.started", seq: 1, steps: [
  { step: 1, stage: "0", instruction: "FROM busybox", line: 1 },
  { step: 2, stage: "0", instruction: "RUN echo hi", line: 2 },
] };
const finished = (seq: number, step: number, status: string) => ({
  type: "step.finished", seq, step, stage: "0", keyword: "RUN", instruction: "RUN echo hi", line: 2, status,
  cached: status === "cached", reason: null, layer: null, duration_ms: 5,
});

describe("BuildStore", () => {
  it("has a waiting step for every planned step as soon as the build starts", () => {
    const store = new BuildStore(sync);
    store.receive(started);
    expect([...store.steps.values()].map((s) => s.state)).toEqual(["pending", "pending"]);
  });

  it("drops an event whose seq it has already applied", () => {
    const store = new BuildStore(sync);
    store.receive(started);
    expect(store.receive({ type: "step.log", seq: 2, step: 2, stream: "stdout", text: "hi\n" })).toBe(true);
    expect(store.receive({ type: "step.log", seq: 2, step: 2, stream: "stdout", text: "hi\n" })).toBe(false);
    expect(store.steps.get(2)?.log).toBe("hi\n");
    expect(store.lastSeq).toBe(2);
  });

  it("joins a burst of log lines into one change", () => {
    const queued: Array<() => void> = [];
    const store = new BuildStore({ schedule: (f) => queued.push(f) });
    store.receive(started);
    let changes = 0;
    store.subscribe(() => changes++);
    for (let i = 0; i < 50; i++) store.receive({ type: "step.log", seq: 10 + i, step: 2, stream: "stdout", text: `${i}\n` });
    expect(queued).toHaveLength(1);
    queued[0]?.();
    expect(changes).toBe(1);
    expect(store.steps.get(2)?.log.split("\n")).toHaveLength(51);
  });

  it("keeps only the newest log text past its cap", () => {
    const store = new BuildStore({ ...sync, maxLogChars: 10 });
    store.receive(started);
    store.receive({ type: "step.log", seq: 2, step: 2, stream: "stdout", text: "0123456789abcdef" });
    expect(store.steps.get(2)?.log).toBe("6789abcdef");
    expect(store.steps.get(2)?.logTruncated).toBe(true);
  });

  it("records how each step finished", () => {
    const store = new BuildStore(sync);
    store.receive(started);
    store.receive({ type: "step.started", seq: 2, step: 2 });
    expect(store.steps.get(2)?.state).toBe("running");
    store.receive(finished(3, 2, "built"));
    expect(store.steps.get(2)?.state).toBe("built");
  });
});

describe("connectBuild", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.stubGlobal("WebSocket", FakeWebSocket);
    FakeWebSocket.opened = [];
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it("builds ws and wss URLs that ask for events after the last seq", () => {
    expect(buildSocketUrl({ protocol: "http:", host: "h:8000" }, "7", 0)).toBe("ws://h:8000/ws/builds/7/?after=0");
    expect(buildSocketUrl({ protocol: "https:", host: "h" }, "7", 12)).toBe("wss://h/ws/builds/7/?after=12");
    expect(buildSocketUrl({ protocol: "http:", host: "h" }, "7", 0, "a b")).toBe("ws://h/ws/builds/7/?after=0&token=a%20b");
  });

  it("resumes after the last event it applied when the server restarts the socket, and drops replays", () => {
    const store = new BuildStore(sync);
    connectBuild("7", store, { location: { protocol: "http:", host: "h" } });
    const first = FakeWebSocket.last();
    first.accept();
    first.send(started);
    first.send({ type: "step.started", seq: 2, step: 2 });
    first.serverClose(1012);
    vi.advanceTimersByTime(backoffMs(0));
    const second = FakeWebSocket.last();
    expect(second.url).toBe("ws://h/ws/builds/7/?after=2");
    second.accept();
    second.send({ type: "step.started", seq: 2, step: 2 }); // sent again by the server: dropped
    second.send(finished(3, 2, "built"));
    expect(store.lastSeq).toBe(3);
    expect(store.steps.get(2)?.state).toBe("built");
  });

  it("stops reconnecting once the build has finished", () => {
    const store = new BuildStore(sync);
    connectBuild("7", store, { location: { protocol: "http:", host: "h" } });
    FakeWebSocket.last().accept();
    FakeWebSocket.last().send({ type: "build.finished", seq: 1, status: "succeeded", duration_ms: 1 });
    FakeWebSocket.last().serverClose(1000);
    vi.advanceTimersByTime(60_000);
    expect(FakeWebSocket.opened).toHaveLength(1);
  });

  it("says when an event cannot be read, and keeps reading the ones after it", () => {
    const store = new BuildStore(sync);
    const errors: unknown[] = [];
    connectBuild("7", store, { location: { protocol: "http:", host: "h" }, onError: (e) => errors.push(e) });
    FakeWebSocket.last().accept();
    FakeWebSocket.last().send({ type: "step.exploded", seq: 1 });
    FakeWebSocket.last().send(started);
    expect(errors).toHaveLength(1);
    expect(store.plan).toHaveLength(2);
  });
});
