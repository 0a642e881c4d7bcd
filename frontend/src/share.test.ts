import { describe, expect, it } from "vitest";
import { shareUrl } from "./share";

describe("shareUrl", () => {
  it("opens the project's studio with the token", () => {
    expect(shareUrl("http://studio.test", "12", "abc_DEF-1")).toBe("http://studio.test/studio/12/?token=abc_DEF-1");
  });
  it("keeps whatever the token holds inside the token", () => {
    expect(shareUrl("http://studio.test", "12", "a&build=9#x")).toBe("http://studio.test/studio/12/?token=a%26build%3D9%23x");
  });
});
