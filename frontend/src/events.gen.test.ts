// events.gen.ts is what the engine's schema gives today: a change to an event class that was not
// regenerated (npm run gen:events) fails here, before a page reads a field that is not sent.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const FRONTEND = fileURLToPath(new URL("..", import.meta.url));

describe("events.gen.ts", () => {
  it("is what builds/engine/events.schema.json gives", () => {
    const run = () => execFileSync("node", ["scripts/gen-events.mjs", "--check"], { cwd: FRONTEND, stdio: "pipe" });
    expect(run).not.toThrow();
  }, 60_000); // a Node process of its own: seconds on a busy machine

  it("names every reason code the engine gives", () => {
    const generated = readFileSync(new URL("./events.gen.ts", import.meta.url), "utf8");
    for (const code of ["files_changed", "parent_rebuilt", "build_arg_changed", "not_run", "same_step"]) {
      expect(generated).toContain(`code: "${code}";`);
    }
  });
});
