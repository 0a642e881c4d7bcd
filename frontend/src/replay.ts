// Plays recorded events (JSON lines) into fresh stores, one per build, at a pace a person can
// follow. A recording may hold several builds; each begins where a build.started appears.

export function splitBuilds(text: string): string[][] {
  const builds: string[][] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    if (line.includes('"build.started"') || builds.length === 0) builds.push([]);
    builds[builds.length - 1]?.push(line);
  }
  return builds;
}

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(t);
      reject(new DOMException("replay stopped", "AbortError"));
    }, { once: true });
  });
}
