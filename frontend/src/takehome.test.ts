import { describe, expect, it } from "vitest";
import { layerStatusText, pushSummary } from "./takehome";

describe("a push's report", () => {
  it("says what happened to every layer", () => {
    const layers = [
      { digest: "sha256:a", size: 2048, current: 2048, status: "pushed" as const },
      { digest: "sha256:b", size: 10, current: 10, status: "exists" as const },
      { digest: "sha256:c", size: 10, current: 10, status: "exists" as const },
    ];
    expect(pushSummary({ layers, uploaded: 2048, status: "succeeded" })).toBe("3 layers: 1 pushed (2.0 KB), 2 already there, not sent");
  });

  it("counts what is still to go while it runs", () => {
    const layers = [
      { digest: "sha256:a", size: 10, current: 10, status: "exists" as const },
      { digest: "sha256:b", size: 4096, current: 1024, status: "uploading" as const },
    ];
    expect(pushSummary({ layers, uploaded: 0, status: "running" })).toBe("2 layers: 1 already there, not sent, 1 to go");
    expect(layerStatusText(layers[1]!)).toBe("uploading 1.0 KB of 4.0 KB");
  });
});
