// What a FROM step pulled from its registry, read from the build's image.pull events: the band
// of a pulled base says "pulled", not "reused from the cache", and shows the download running.
import type { ImageTransfer } from "./protocol";

export interface Pull {
  image: string;
  /** Layers fetched from the registry; layers the store already had are not counted. */
  layers: number;
  current: number;
  total: number;
  done: boolean;
}

/** The pull of `step`'s base image, or null when its image was already in the store. */
export function pullOf(transfers: Iterable<ImageTransfer>, step: number): Pull | null {
  let pull: Pull | null = null;
  let fetched = 0;
  for (const t of transfers) {
    if (t.type !== "image.pull" || t.step !== step) continue;
    pull ??= { image: t.image, layers: 0, current: 0, total: 0, done: false };
    if (t.layer === null) {
      pull.done = t.status === "done";
      pull.total = t.total;
    } else if (t.status !== "exists") {
      fetched += 1;
      pull.current += t.current;
    }
  }
  if (pull === null) return null;
  pull.layers = fetched;
  if (pull.done) pull.current = pull.total;
  return pull;
}
