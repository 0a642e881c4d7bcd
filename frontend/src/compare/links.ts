// Which Dockerfile lines belong to which row, both ways: a row owns lines line..end_line of each
// build's Dockerfile; a line of the diff belongs to the row whose step spans it on either side.
import type { DiffLine, Row } from "./types";

function spans(row: Row, side: "a" | "b", line: number | null): boolean {
  const step = row[side];
  return line !== null && step !== null && step.line <= line && line <= step.end_line;
}

/** The indexes (in `lines`) of the diff lines that show the row's instruction on either side. */
export function linesOfRow(row: Row, lines: readonly DiffLine[]): number[] {
  const found: number[] = [];
  lines.forEach((line, i) => {
    if (spans(row, "a", line.a) || spans(row, "b", line.b)) found.push(i);
  });
  return found;
}

/** The row showing this diff line's instruction: its own side first, then the other side. */
export function rowOfLine(line: DiffLine, rows: readonly Row[]): Row | undefined {
  return (
    rows.find((row) => spans(row, "a", line.a) && (line.b === null || spans(row, "b", line.b))) ??
    rows.find((row) => spans(row, "b", line.b) && (line.a === null || spans(row, "a", line.a))) ??
    rows.find((row) => spans(row, "a", line.a) || spans(row, "b", line.b))
  );
}
