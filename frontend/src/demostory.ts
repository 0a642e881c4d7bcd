// What the recorded demo says as it replays: a sentence for each moment a beginner should notice
// (a build starts, a step gets its verdict and why, a build ends), so the page teaches on its own.
import type { BuildEvent, StepFinished } from "./protocol";
import { STATUS_TEXT } from "./verdicts";

export interface Moment {
  /** The Dockerfile line it is about, if any. */
  line: number | null;
  /** A short heading: the instruction, or the build. */
  title: string;
  /** The verdict in a word ("cached", "built"), empty for a build's start and end. */
  verdict: string;
  /** Why, in a sentence. */
  text: string;
}

/** Why a step came out as it did, when the recording gives no reason of its own. */
function plainWhy(step: StepFinished): string {
  if (step.keyword === "FROM" || step.base) return "The base image every layer sits on, already on this machine.";
  if (step.status === "cached") return "Nothing it depends on changed, so the cache handed back the layer from the last build.";
  if (step.status === "metadata") return "It changes the image's settings only and makes no layer.";
  return "";
}

/** The moment an event marks, or null for the ones a person need not read (logs, a step starting). */
export function momentOf(event: BuildEvent, build: number, builds: number): Moment | null {
  switch (event.type) {
    case "build.started":
      return {
        line: null,
        title: `Build ${build} of ${builds}`,
        verdict: "",
        text: `starts: ${event.steps.length} steps, top to bottom.`,
      };
    case "step.finished":
      return {
        line: event.line,
        title: `Line ${event.line}: ${event.instruction}`,
        // A FROM is the base the rest sits on, as its band says.
        verdict: event.keyword === "FROM" && event.status === "cached" ? "base" : STATUS_TEXT[event.status],
        text: event.reason?.message ?? plainWhy(event),
      };
    case "build.finished": {
      const cache = event.cache;
      return {
        line: null,
        title: `Build ${build} ${event.status}`,
        verdict: "",
        text: cache
          ? `${cache.hits} of ${cache.hits + cache.misses} steps came from the cache, ${cache.misses} were built.`
          : "",
      };
    }
    default:
      return null;
  }
}

/** What to say between two builds: the edit that makes the second one differ. */
export function editMoment(path: string): Moment {
  return {
    line: null,
    title: `Then ${path} was edited`,
    verdict: "",
    text: "(the edit is shown above) and the same Dockerfile was built again.",
  };
}
