// A student's view: each exercise's checks and latest build, read again from the API whenever one
// of their builds is queued, starts or ends (their project's socket says so).
import type { Answer, Schemas } from "../api";

type KeepOpen = (path: string, onMessage: (data: unknown) => void, onState: (open: boolean) => void) => void;

type Result = Schemas["CheckResult"];

interface LatestBuild {
  number: number;
  status: string;
}

const BADGE: Record<string, string> = { pass: "pass", fail: "fail", not_yet: "not yet" };
// As selectors.STATE_WORDS says them when the page is made.
export const STATE_WORDS: Record<string, string> = {
  checking: "checking…",
  not_yet: "not yet checked",
  failed: "a check fails",
  passed: "every check passes",
  partly: "some checks pass, the rest not yet",
};

/** The word for where a copy stands, kept current as builds end and checks run. */
export function renderState(word: HTMLElement, state: string): void {
  word.textContent = STATE_WORDS[state] ?? state;
  word.className = `state-word state-${state}`;
}

export function renderChecks(list: HTMLElement, results: Result[]): void {
  list.replaceChildren(
    ...results.map((r) => {
      const li = document.createElement("li");
      li.className = `check check-${r.status}`;
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = BADGE[r.status] ?? r.status;
      const name = document.createElement("strong");
      name.textContent = r.check;
      const why = document.createElement("span");
      why.className = "why";
      why.textContent = r.message;
      li.append(badge, " ", name, document.createElement("br"), why);
      return li;
    }),
  );
}

export function followStudent(root: HTMLElement, keepOpen: KeepOpen): void {
  const classroom = root.dataset.classroom!;
  const refresh = async () => {
    const reply = await fetch(`/api/classrooms/${classroom}/`, { credentials: "same-origin" });
    if (!reply.ok) return;
    const data = (await reply.json()) as Answer<"classroom_get">;
    if (data.role !== "student") return;
    for (const exercise of data.exercises) {
      const article = root.querySelector<HTMLElement>(`article[data-exercise="${exercise.id}"]`);
      const list = article?.querySelector<HTMLElement>("ul.checks");
      if (list) renderChecks(list, exercise.results);
      const word = article?.querySelector<HTMLElement>(".state-word");
      if (word) renderState(word, exercise.state);
    }
  };
  for (const article of root.querySelectorAll<HTMLElement>("article[data-project]")) {
    const latest = article.querySelector(".latest-build");
    keepOpen(
      `/ws/projects/${article.dataset.project}/`,
      (data) => {
        const build = (data as { build?: LatestBuild }).build;
        if (build && latest) latest.textContent = `Your latest build: #${build.number}, ${build.status}`;
        void refresh();
      },
      () => undefined,
    );
  }
}
