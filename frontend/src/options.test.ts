import { describe, expect, it } from "vitest";
import { parseBuildArgs } from "./options";

describe("parseBuildArgs", () => {
  it("reads NAME=value lines, skipping blanks and comments, keeping = in values", () => {
    expect(parseBuildArgs("A=1\n\n# note\nB=x=y\n")).toEqual({ args: { A: "1", B: "x=y" } });
  });
  it("names the line that is not NAME=value", () => {
    expect(parseBuildArgs("A=1\nnot an arg")).toEqual({ error: 'build args line 2: write NAME=value, not "not an arg"' });
  });
});
