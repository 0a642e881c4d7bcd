import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { editMoment, momentOf } from "./demostory";
import { parseEvent } from "./protocol";
import { splitBuilds } from "./replay";

const recording = readFileSync(new URL("../public/demo-events.jsonl", import.meta.url), "utf8");

function story(): string[] {
  const builds = splitBuilds(recording);
  const said: string[] = [];
  builds.forEach((lines, i) => {
    if (i > 0) said.push(editMoment("app.py").title);
    for (const line of lines) {
      const moment = momentOf(parseEvent(line), i + 1, builds.length);
      if (moment) said.push(`${moment.title} | ${moment.verdict} | ${moment.text}`);
    }
  });
  return said;
}

describe("the demo's story", () => {
  it("tells both builds, the edit between them and why each layer came out as it did", () => {
    const said = story();
    expect(said[0]).toBe("Build 1 of 2 |  | starts: 4 steps, top to bottom.");
    expect(said[1]).toMatch(/^Line 1: FROM busybox \| base \| The base image/);
    expect(said).toContain("Then app.py was edited");
    const second = said.slice(said.indexOf("Then app.py was edited"));
    expect(second.find((s) => s.startsWith("Line 2: WORKDIR /app"))).toMatch(/\| cached \| Nothing it depends on changed/);
    expect(second.find((s) => s.startsWith("Line 3: COPY . ."))).toMatch(/\| built \| .*app\.py was changed/);
    expect(second.find((s) => s.startsWith("Line 4: RUN cat app.py"))).toMatch(/layer below it \(line 3: COPY \. \.\) was rebuilt/);
    expect(said.at(-1)).toBe("Build 2 succeeded |  | 1 of 3 steps came from the cache, 2 were built.");
  });

  it("says nothing for logs and starting steps", () => {
    expect(momentOf({ type: "step.started", seq: 2, step: 1 }, 1, 2)).toBeNull();
    expect(momentOf({ type: "step.log", seq: 3, step: 1, stream: "stdout", text: "x" }, 1, 2)).toBeNull();
  });
});
