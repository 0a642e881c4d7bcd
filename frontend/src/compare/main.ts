// The compare page: fetches GET /api/compare/<a>/<b>/ (with the page's share tokens, if any) and
// draws it; a row's details are fetched when it is first opened.
import "./compare.css";
import { DetailLoader } from "./detail";
import { parseComparison } from "./types";
import { ComparisonView } from "./view";

async function start(): Promise<void> {
  const root = document.getElementById("compare");
  const status = document.getElementById("compare-status");
  if (!root || !status) return;
  const { a, b, query } = root.dataset;
  const tokens = new URLSearchParams(query ?? "");
  const api = `/api/compare/${a}/${b}/`;
  try {
    const response = await fetch(`${api}?${tokens}`, { credentials: "same-origin" });
    const body: unknown = await response.json();
    if (!response.ok) throw new Error((body as { error?: string }).error ?? `HTTP ${response.status}`);
    const data = parseComparison(body);
    const details = new DetailLoader((row) => {
      const params = new URLSearchParams(tokens);
      params.set("a", row.a ? String(row.a.step) : "");
      params.set("b", row.b ? String(row.b.step) : "");
      return `${api}row/?${params}`;
    });
    status.textContent = `${data.rows.length} rows`;
    status.hidden = true;
    new ComparisonView(root, data, details).render();
    root.dataset["ready"] = "true";
  } catch (error) {
    status.textContent = `Could not load the comparison: ${(error as Error).message}`;
    status.classList.add("cmp-error");
  }
}

void start();
