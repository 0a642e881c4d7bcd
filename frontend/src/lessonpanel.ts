// The lesson panel above a student's copy in the studio (classrooms/_lesson_panel.html), kept
// current without a reload: its "predict, then build" steps follow the Dockerfile as it is being
// edited (the planner's steps, in the student's own cache), and its state and checks are read
// again whenever a build of the copy changes or its checks have run ("checking…" while they do).
import type { Answer } from "./api";
import { PLANNED, PROJECT_CHANGED, type ProjectChange } from "./history";
import { renderChecks, STATE_WORDS } from "./classroom/student";

interface PlannedStep {
  step: number;
  instruction: string;
}

/** The predict form's boxes for `steps`, the ones ticked before still ticked. */
export function renderPredictSteps(fieldset: HTMLFieldSetElement, steps: PlannedStep[]): void {
  const ticked = new Set([...fieldset.querySelectorAll<HTMLInputElement>("input[name=rebuild]:checked")].map((b) => b.value));
  const labels = steps.map((s) => {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.name = "rebuild";
    box.value = String(s.step);
    box.checked = ticked.has(box.value);
    const code = document.createElement("code");
    code.textContent = s.instruction.length > 60 ? `${s.instruction.slice(0, 59)}…` : s.instruction;
    label.append(box, ` ${s.step}. `, code);
    return label;
  });
  const legend = fieldset.querySelector("legend");
  fieldset.replaceChildren(...(legend ? [legend] : []), ...labels);
}

export function followLessonPanel(panel: HTMLElement): void {
  const fieldset = panel.querySelector<HTMLFieldSetElement>("#predict-form fieldset");
  if (fieldset) {
    window.addEventListener(PLANNED, (e) => {
      const steps = (e as CustomEvent<PlannedStep[]>).detail;
      if (steps.length) renderPredictSteps(fieldset, steps);
    });
  }
  const { classroom, exercise } = panel.dataset;
  if (!classroom || !exercise) return;
  const showState = (state: string): void => {
    const word = panel.querySelector<HTMLElement>(".lesson-state");
    if (word) word.textContent = STATE_WORDS[state] ?? state;
    panel.className = panel.className.replace(/\blesson-\w+$/, `lesson-${state}`);
  };
  // Only the newest news is shown: an answer asked for before the checks began is dropped.
  let newest = 0;
  window.addEventListener(PROJECT_CHANGED, (e) => {
    const asked = ++newest;
    if ((e as CustomEvent<ProjectChange | null>).detail?.checking) {
      showState("checking");
      return;
    }
    void (async () => {
      const reply = await fetch(`/api/classrooms/${classroom}/`, { credentials: "same-origin" });
      if (!reply.ok) return;
      const data = (await reply.json()) as Answer<"classroom_get">;
      if (asked !== newest) return;
      if (data.role !== "student") return;
      const mine = data.exercises.find((x) => String(x.id) === exercise);
      if (!mine) return;
      showState(mine.state);
      const list = panel.querySelector<HTMLElement>("ul.checks");
      if (list) renderChecks(list, mine.results);
    })();
  });
}
