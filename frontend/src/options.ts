// The build options as a person types them: build args one `NAME=value` a line.

export interface BuildOptions {
  target: string;
  build_args: Record<string, string>;
  no_cache: boolean;
}

/** The build args in `text`, or the first line that is not `NAME=value`, named. */
export function parseBuildArgs(text: string): { args: Record<string, string> } | { error: string } {
  const args: Record<string, string> = {};
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) return { error: `build args line ${i + 1}: write NAME=value, not ${JSON.stringify(line)}` };
    args[m[1]!] = m[2]!;
  }
  return { args };
}
