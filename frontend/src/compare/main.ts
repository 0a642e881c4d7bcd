// The compare page: fetches GET /api/compare/<a>/<b>/ (with the page's share tokens, if any) and
// draws it; a row's details are fetched when it is first opened. While either build is still
// queued or running, the comparison is fetched again every few seconds and redrawn as it moves.
import "./compare.css";
import { DetailLoader } from "./detail";
import { ACTIVE } from "./text";
import { parseComparison } from "./types";
import type { Comparison } from "./types";
import { ComparisonView } from "./view";

const REFRESH_MS = 2000;

async function load(url: string): Promise<Comparison> {
  const response = await fetch(url, { credentials: "same-origin" });
  const body: unknown = await response.json();
  if (!response.ok) throw new Error((body as { error?: string }).error ?? `HTTP ${response.status}`);
  return parseComparison(body);
}

async function start(): Promise<void> {
  const root = document.getElementById("compare");
  const status = document.getElementById("compare-status");
  if (!root || !status) return;
  const { a, b, query } = root.dataset;
  const tokens = new URLSearchParams(query ?? "");
  const api = `/api/compare/${a}/${b}/`;
  const content = document.createElement("div");
  root.append(content);
  let drawn = "";
  for (;;) {
    let data: Comparison;
    try {
      data = await load(`${api}?${tokens}`);
    } catch (error) {
      status.hidden = false;
      status.textContent = `Could not load the comparison: ${(error as Error).message}`;
      status.classList.add("cmp-error");
      return;
    }
    const running = [data.a, data.b].filter((build) => ACTIVE.has(build.status));
    const text = JSON.stringify(data);
    if (text !== drawn) {
      drawn = text;
      // Details are fetched afresh after a redraw: a running build's steps change.
      const details = new DetailLoader((row) => {
        const params = new URLSearchParams(tokens);
        params.set("a", row.a ? String(row.a.step) : "");
        params.set("b", row.b ? String(row.b.step) : "");
        return `${api}row/?${params}`;
      });
      content.replaceChildren();
      new ComparisonView(content, data, details).render();
    }
    status.hidden = running.length === 0;
    status.classList.remove("cmp-error");
    status.textContent = running.map((build) => `Build #${build.number} is ${build.status}…`).join(" ");
    if (running.length === 0) {
      root.dataset["ready"] = "true";
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, REFRESH_MS));
  }
}

void start();
