// api-types.ts is generated from openapi.json, which `manage.py export_openapi` writes from the
// API's own schemas (tests/test_api_schema.py keeps that file current). This keeps the generated
// types current with it: a change to the API that the page's types miss fails here.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { expect, test } from "vitest";

const root = fileURLToPath(new URL("..", import.meta.url));

test("src/api-types.ts is what openapi-typescript makes of openapi.json (npm run api-types)", () => {
  const cli = fileURLToPath(new URL("../node_modules/openapi-typescript/bin/cli.js", import.meta.url));
  const made = execFileSync(process.execPath, [cli, "openapi.json"], { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  expect(made).toBe(readFileSync(`${root}/src/api-types.ts`, "utf8"));
}, 60_000); // a Node process of its own: seconds on a busy machine
