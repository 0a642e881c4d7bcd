// The classroom pages' script: the teacher's live grid (ws/classrooms/<id>/), and a student's
// checks, read again whenever one of their builds changes (ws/projects/<id>/).
import "./classroom.css";
import { GridState } from "./grid";
import { MessageError, parseMessage } from "./messages";
import { pickedCompareUrl, renderAccuracy, renderGrid, renderMistakes } from "./view";
import { followStudent } from "./student";
import { keepOpen, socketUrl, type Connection } from "../socket";

/** Keeps the page's socket at `path` open; each new connection starts with a snapshot, so a
 * reconnect needs nothing resumed. onState says whether it is open right now. */
export function follow(path: string, onMessage: (data: unknown) => void, onState: (open: boolean) => void): Connection {
  return keepOpen({
    url: () => socketUrl(location, path),
    onMessage: (data) => onMessage(JSON.parse(data as string)),
    onOpen: () => onState(true),
    onClose: () => onState(false),
  });
}

function dashboard(root: HTMLElement): void {
  const classroom = root.dataset.classroom!;
  const exercise = root.dataset.exercise ?? "";
  if (!exercise) return;
  const grid = document.getElementById("grid")!;
  const compare = document.getElementById("compare-link") as HTMLAnchorElement;
  const liveState = document.getElementById("live-state")!;
  const studentCount = document.getElementById("student-count");
  const mistakes = document.getElementById("mistakes");
  const accuracy = document.getElementById("prediction-accuracy") as HTMLTableElement | null;
  const state = new GridState(Number(exercise));
  const picked = new Set<number>();
  let queued = false;

  const draw = () => {
    queued = false;
    renderGrid(grid, state, picked);
    if (mistakes) {
      renderMistakes(document.getElementById("mistake-groups")!, document.getElementById("mistakes-empty")!, state, mistakes.dataset.example ?? "");
    }
    if (accuracy && state.predictions) renderAccuracy(accuracy, state.predictions);
    const url = pickedCompareUrl(state, picked);
    if (url) compare.href = url;
    else compare.removeAttribute("href");
    compare.setAttribute("aria-disabled", String(!url));
    const count = state.rows.size;
    root.dataset.rows = String(count);
    if (studentCount) studentCount.textContent = `${count} student${count === 1 ? "" : "s"}`;
  };
  const redraw = () => {
    if (!queued) {
      queued = true;
      requestAnimationFrame(draw);
    }
  };
  grid.addEventListener("change", (e) => {
    const box = e.target as HTMLInputElement;
    const id = Number(box.dataset.student);
    if (box.checked) {
      picked.add(id);
      // Two at most: ticking a third lets go of the oldest pick.
      if (picked.size > 2) picked.delete(picked.values().next().value!);
    } else picked.delete(id);
    redraw();
  });
  follow(
    `/ws/classrooms/${classroom}/?exercise=${exercise}`,
    (data) => {
      try {
        if (state.apply(parseMessage(data))) redraw();
      } catch (error) {
        if (!(error instanceof MessageError)) throw error;
        console.warn(error.message);
      }
    },
    (open) => {
      liveState.textContent = open ? "live" : "reconnecting…";
      root.dataset.live = String(open);
    },
  );
  setInterval(redraw, 15_000); // "last activity" keeps counting
}

const teacher = document.getElementById("classroom-dashboard");
if (teacher) dashboard(teacher);
const student = document.getElementById("student-view");
if (student) followStudent(student, follow);
