import { describe, expect, it } from "vitest";
import { filesText } from "./layerstack";

describe("filesText", () => {
  it("says what changed in words, leaving out what did not happen", () => {
    expect(filesText({ added: 2, modified: 1, deleted: 0 })).toBe("2 added · 1 modified");
    expect(filesText({ added: 0, modified: 0, deleted: 3 })).toBe("3 deleted");
    expect(filesText({ added: 0, modified: 0, deleted: 0 })).toBe("no files changed");
  });
});
