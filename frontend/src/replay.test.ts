import { describe, expect, it } from "vitest";
import { splitBuilds } from "./replay";

describe("splitBuilds", () => {
  it("starts a new build at every build.started", () => {
    const text = ['{"type":"build.started","seq":1,"steps":[]}', '{"type":"build.finished","seq":2}', "",
      '{"type":"build.started","seq":1,"steps":[]}'].join("\n");
    expect(splitBuilds(text).map((b) => b.length)).toEqual([2, 1]);
  });
});
