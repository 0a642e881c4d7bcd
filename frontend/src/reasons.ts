// The details behind a rebuilt band's sentence, drawn for what each reason holds: the old and new
// instruction, the files that changed under a COPY, the ARG or ENV values, the base image.
import type { Reason } from "./protocol";
import type { FilesChanged } from "./events.gen";
import { el } from "./format";

// Keys of a reason that are said elsewhere (the sentence, the status line), or drawn specially.
const SHOWN_ELSEWHERE = new Set(["code", "message", "counts", "parent_step", "cause_step"]);

export function reasonDetails(reason: Reason): HTMLElement[] {
  switch (reason.code) {
    case "instruction_changed":
      return [oldNew("was", String(reason["old"] ?? ""), "now", String(reason["new"] ?? ""))];
    case "base_changed":
      return [oldNew("base was", String(reason["old"] ?? ""), "now", String(reason["new"] ?? ""))];
    case "files_changed":
      return fileLists(reason);
    case "build_arg_changed":
    case "env_changed":
    case "setting_changed":
      return [changes(reason["changes"])];
    default:
      return genericRows(reason);
  }
}

/** True when there is more to show than the sentence already says. */
export function hasDetails(reason: Reason): boolean {
  return Object.entries(reason).some(([k, v]) => !SHOWN_ELSEWHERE.has(k) && !isEmpty(v));
}

function oldNew(oldLabel: string, oldText: string, newLabel: string, newText: string): HTMLElement {
  const dl = el("dl", "reason-oldnew");
  const del = el("del", "", oldText);
  const ins = el("ins", "", newText);
  const dd1 = el("dd");
  dd1.append(del);
  const dd2 = el("dd");
  dd2.append(ins);
  dl.append(el("dt", "", oldLabel), dd1, el("dt", "", newLabel), dd2);
  return dl;
}

function fileLists(reason: FilesChanged): HTMLElement[] {
  const counts: Partial<FilesChanged["counts"]> = reason.counts ?? {};
  const out: HTMLElement[] = [];
  if (reason.from) out.push(el("p", "", `Copied from stage ${reason.from}.`));
  const dl = el("dl", "reason-files");
  for (const [key, label] of [["modified", "changed"], ["added", "added"], ["removed", "removed"]] as const) {
    const names = Array.isArray(reason[key]) ? reason[key].map(String) : [];
    if (names.length === 0) continue;
    const ul = el("ul");
    for (const name of names) ul.append(el("li", `file-${key}`, name));
    const more = (counts[key] ?? names.length) - names.length;
    if (more > 0) ul.append(el("li", "", `and ${more} more`));
    const dd = el("dd");
    dd.append(ul);
    dl.append(el("dt", "", label), dd);
  }
  out.push(dl);
  return out;
}

function changes(raw: unknown): HTMLElement {
  const table = el("table", "reason-changes");
  const head = el("tr");
  head.append(el("th", "", "name"), el("th", "", "before"), el("th", "", "now"));
  table.append(head);
  for (const c of Array.isArray(raw) ? raw : []) {
    if (typeof c !== "object" || c === null) continue;
    const change = c as Record<string, unknown>;
    const row = el("tr");
    const show = (v: unknown): string => (v === null || v === undefined ? "unset" : String(v));
    const name = `${String(change["name"])}${change["arg"] === true ? " (ARG)" : ""}`;
    row.append(el("td", "", name), el("td", "", show(change["old"])), el("td", "", show(change["new"])));
    table.append(row);
  }
  return table;
}

function genericRows(reason: Reason): HTMLElement[] {
  const rows = Object.entries(reason).filter(([k, v]) => !SHOWN_ELSEWHERE.has(k) && !isEmpty(v));
  if (rows.length === 0) return [];
  const dl = el("dl");
  for (const [k, v] of rows) {
    const dd = el("dd");
    dd.append(el("code", "", typeof v === "string" ? v : JSON.stringify(v)));
    dl.append(el("dt", "", k.replace(/_/g, " ")), dd);
  }
  return [dl];
}

function isEmpty(v: unknown): boolean {
  return v === null || v === undefined || v === "" || (Array.isArray(v) && v.length === 0);
}
