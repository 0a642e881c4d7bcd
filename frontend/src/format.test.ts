import { describe, expect, it } from "vitest";
import { formatBytes, plural, visibleName } from "./format";

describe("plural", () => {
  it("counts one thing without an s", () => {
    expect(plural(1, "file")).toBe("1 file");
    expect(plural(3, "file")).toBe("3 files");
  });
});

describe("formatBytes", () => {
  it("keeps small sizes exact and rounds larger ones", () => {
    expect(formatBytes(612)).toBe("612 B");
    expect(formatBytes(1982365)).toBe("1.9 MB");
  });
});

describe("visibleName", () => {
  it("writes control characters as Go's %q does and leaves the rest alone", () => {
    expect(visibleName("new\nline")).toBe("new\\nline");
    expect(visibleName("tab\tname")).toBe("tab\\tname");
    expect(visibleName("\x1b[31mred")).toBe("\\x1b[31mred");
    expect(visibleName("caf\\xe9 é.txt")).toBe("caf\\xe9 é.txt");
  });
});
