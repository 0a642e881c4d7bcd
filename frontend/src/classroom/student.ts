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
