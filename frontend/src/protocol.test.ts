import { describe, expect, it } from "vitest";
import { parseEvent, ProtocolError } from "./protocol";
import demoText from "../public/demo-events.jsonl?raw";

const demo = demoText
  .split("\n")
  .filter((line) => line.trim() !== "");

describe("parseEvent", () => {
  it("accepts every event a real build printed", () => {
    const types = demo.map((line) => parseEvent(line).type);
    expect(types).toContain("build.started");
    expect(types).toContain("step.log");
    expect(types.filter((t) => t === "build.finished")).toHaveLength(2);
  });

  it("keeps the reason's details for the view to show", () => {
    const copy = demo.map((line) => parseEvent(line)).filter((e) => e.type === "step.finished" && e.keyword === "COPY");
    const last = copy[copy.length - 1];
    const reason = last?.type === "step.finished" ? last.reason : null;
    expect(reason?.code === "files_changed" && reason.modified).toEqual(["app.py"]);
  });

  it("rejects an unknown type, a missing seq and an unknown status", () => {
    expect(() => parseEvent({ type: "step.exploded", seq: 1 })).toThrow(ProtocolError);
    expect(() => parseEvent({ type: "step.started", step: 1 })).toThrow(ProtocolError);
    expect(() =>
      parseEvent({ type: "step.finished", seq: 2, step: 1, keyword: "RUN", instruction: "RUN x", line: 1, status: "melted" }),
    ).toThrow(ProtocolError);
  });

  it("fills in what older events leave out", () => {
    const e = parseEvent({ type: "step.finished", seq: 3, step: 2, keyword: "ENV", instruction: "ENV A=1", line: 2, status: "cached" });
    expect(e.type === "step.finished" && e.metadata === false && e.layer === null && e.duration_ms === 0).toBe(true);
  });
});
