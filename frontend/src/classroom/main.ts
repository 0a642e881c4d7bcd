// The classroom pages' script: the teacher's live grid (ws/classrooms/<id>/), and a student's
// checks, read again whenever one of their builds changes (ws/projects/<id>/).
import "./classroom.css";
import { GridState } from "./grid";
import { MessageError, parseMessage } from "./messages";
import { pickedCompareUrl, renderGrid } from "./view";
import { followStudent } from "./student";

function socketUrl(path: string): string {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${path}`;
}

/** Keeps a socket open: reconnects with backoff; each new connection starts with a snapshot. */
export function keepOpen(path: string, onMessage: (data: unknown) => void, onState: (open: boolean) => void): void {
  let delay = 500;
  const open = () => {
    const ws = new WebSocket(socketUrl(path));
    ws.onopen = () => {
      delay = 500;
      onState(true);
    };
    ws.onmessage = (e) => onMessage(JSON.parse(e.data as string));
    ws.onclose = () => {
      onState(false);
      setTimeout(open, delay);
      delay = Math.min(delay * 2, 10_000);
    };
  };
  open();
}

function dashboard(root: HTMLElement): void {
  const classroom = root.dataset.classroom!;
  const exercise = root.dataset.exercise ?? "";
  if (!exercise) return;
  const grid = document.getElementById("grid")!;
  const compare = document.getElementById("compare-link") as HTMLAnchorElement;
  const liveState = document.getElementById("live-state")!;
  const studentCount = document.getElementById("student-count");
  const state = new GridState(Number(exercise));
  const picked = new Set<number>();
  let queued = false;

  const draw = () => {
    queued = false;
    renderGrid(grid, state, picked);
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
  keepOpen(
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
if (student) followStudent(student, keepOpen);
