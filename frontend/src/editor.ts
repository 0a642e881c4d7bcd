// The code editor: CodeMirror 6 with one state per open file (so each tab keeps its own undo
// history and cursor), Dockerfile highlighting, Ctrl/Cmd+Enter to build, and the marks the
// studio lays over the Dockerfile: a step's lines lit up, a line an error names, the prediction
// gutter, and lint diagnostics.
import { basicSetup } from "codemirror";
import { Prec, RangeSet, StateEffect, StateField, type EditorState as State, type Extension } from "@codemirror/state";
import { Decoration, EditorView, GutterMarker, gutter, keymap, type DecorationSet } from "@codemirror/view";
import { EditorState } from "@codemirror/state";
import { StreamLanguage } from "@codemirror/language";
import { lintGutter, setDiagnostics, type Diagnostic } from "@codemirror/lint";
import { dockerFile } from "@codemirror/legacy-modes/mode/dockerfile";
import { python } from "@codemirror/legacy-modes/mode/python";
import { shell } from "@codemirror/legacy-modes/mode/shell";
import type { LineMark } from "./dockerlines";

export interface LintDiagnostic {
  line: number;
  end_line?: number | null;
  column?: number | null;
  severity: "error" | "warning" | "info";
  code?: string;
  message: string;
  source?: string;
  url?: string | null;
}

export interface EditorCallbacks {
  onChange: (path: string, text: string) => void;
  onRun: () => void;
  onCursorLine: (path: string, line: number) => void;
}

/** A set of whole-line decorations driven by one effect: null clears, a range lights lines. */
function lineDecoration(className: string) {
  const set = StateEffect.define<{ from: number; to: number } | null>();
  const field = StateField.define<DecorationSet>({
    create: () => Decoration.none,
    update(value, tr) {
      value = value.map(tr.changes);
      for (const e of tr.effects) {
        if (!e.is(set)) continue;
        if (e.value === null) {
          value = Decoration.none;
          continue;
        }
        const doc = tr.state.doc;
        const ranges = [];
        const last = Math.min(e.value.to, doc.lines);
        for (let n = Math.max(1, e.value.from); n <= last; n++) {
          ranges.push(Decoration.line({ class: className }).range(doc.line(n).from));
        }
        value = Decoration.set(ranges);
      }
      return value;
    },
    provide: (f) => EditorView.decorations.from(f),
  });
  return { set, field };
}

class PredictionMarker extends GutterMarker {
  constructor(readonly mark: LineMark) {
    super();
  }
  override eq(other: GutterMarker): boolean {
    return other instanceof PredictionMarker && other.mark.title === this.mark.title && other.mark.first === this.mark.first && other.mark.certain === this.mark.certain;
  }
  override toDOM(): Node {
    const span = document.createElement("span");
    span.className = `predict predict-${this.mark.prediction}${this.mark.first ? " predict-first" : ""}${this.mark.certain ? "" : " predict-uncertain"}`;
    span.title = this.mark.title;
    span.setAttribute("aria-label", this.mark.title);
    span.dataset["step"] = String(this.mark.step);
    const symbol = this.mark.prediction === "cached" ? "✓" : this.mark.prediction === "built" ? (this.mark.certain ? "↻" : "?") : this.mark.prediction === "metadata" ? "·" : "–";
    span.textContent = this.mark.first ? symbol : "";
    return span;
  }
}

const setPredictions = StateEffect.define<Map<number, LineMark>>();
const predictionField = StateField.define<RangeSet<GutterMarker>>({
  create: () => RangeSet.empty,
  update(value, tr) {
    value = value.map(tr.changes);
    for (const e of tr.effects) {
      if (!e.is(setPredictions)) continue;
      const doc = tr.state.doc;
      const ranges = [...e.value.entries()]
        .filter(([n]) => n >= 1 && n <= doc.lines)
        .sort(([a], [b]) => a - b)
        .map(([n, mark]) => new PredictionMarker(mark).range(doc.line(n).from));
      value = RangeSet.of(ranges);
    }
    return value;
  },
});

const stepLines = lineDecoration("cm-step-lines");
const errorLine = lineDecoration("cm-error-line");

function language(path: string): Extension {
  const name = path.split("/").pop() ?? path;
  if (/^(Dockerfile|Containerfile)(\..*)?$|\.dockerfile$/i.test(name)) return StreamLanguage.define(dockerFile);
  if (name.endsWith(".py")) return StreamLanguage.define(python);
  if (name.endsWith(".sh")) return StreamLanguage.define(shell);
  return [];
}

// The editor adds its styles as <style> elements; the page's Content-Security-Policy allows those
// only with the nonce the server put in <meta name="csp-nonce"> for this page.
const cspNonce: Extension = EditorView.cspNonce.of(
  (typeof document !== "undefined" && document.querySelector<HTMLMetaElement>('meta[name="csp-nonce"]')?.content) || "",
);

export class StudioEditor {
  readonly view: EditorView;
  private readonly states = new Map<string, State>();
  path = "";

  constructor(parent: HTMLElement, private readonly callbacks: EditorCallbacks, private readonly readOnly: boolean) {
    this.view = new EditorView({ parent, state: EditorState.create({ doc: "", extensions: [cspNonce] }) });
  }

  private extensions(path: string): Extension[] {
    return [
      Prec.highest(keymap.of([{ key: "Mod-Enter", run: () => (this.callbacks.onRun(), true) }])),
      cspNonce,
      basicSetup,
      language(path),
      EditorView.lineWrapping,
      EditorState.readOnly.of(this.readOnly),
      EditorView.contentAttributes.of({ "aria-label": `Contents of ${path}` }),
      stepLines.field,
      errorLine.field,
      predictionField,
      gutter({ class: "cm-predict-gutter", markers: (v) => v.state.field(predictionField) }),
      lintGutter(),
      EditorView.updateListener.of((update) => {
        if (update.docChanged) this.callbacks.onChange(path, update.state.doc.toString());
        if (update.docChanged || update.selectionSet) {
          const line = update.state.doc.lineAt(update.state.selection.main.head).number;
          this.callbacks.onCursorLine(path, line);
        }
      }),
    ];
  }

  /** Shows `path`, made from `text` the first time it is opened. */
  open(path: string, text: string): void {
    if (this.path) this.states.set(this.path, this.view.state);
    const state = this.states.get(path) ?? EditorState.create({ doc: text, extensions: this.extensions(path) });
    this.path = path;
    this.view.setState(state);
  }

  /** Forgets a closed, deleted or renamed file's state. */
  close(path: string): void {
    this.states.delete(path);
    // Shown no more: the next open() must not keep its state under its old name.
    if (path === this.path) this.path = "";
  }

  text(path: string): string | null {
    if (path === this.path) return this.view.state.doc.toString();
    return this.states.get(path)?.doc.toString() ?? null;
  }

  isOpen(path: string): boolean {
    return path === this.path || this.states.has(path);
  }

  /** Applies `effects` to the file's state, whether it is shown or waiting in a tab. */
  private dispatchTo(path: string, spec: (state: State) => Parameters<EditorView["dispatch"]>[0]): void {
    if (path === this.path) {
      this.view.dispatch(spec(this.view.state));
      return;
    }
    const state = this.states.get(path);
    if (state) this.states.set(path, state.update(spec(state)).state);
  }

  highlightSteps(path: string, range: { from: number; to: number } | null, scroll = false): void {
    this.dispatchTo(path, (state) => {
      const spec: Parameters<EditorView["dispatch"]>[0] = { effects: stepLines.set.of(range) };
      if (scroll && range && range.from <= state.doc.lines) {
        return { effects: [stepLines.set.of(range), EditorView.scrollIntoView(state.doc.line(range.from).from, { y: "center" })] };
      }
      return spec;
    });
  }

  markError(path: string, line: number | null): void {
    this.dispatchTo(path, () => ({ effects: errorLine.set.of(line === null ? null : { from: line, to: line }) }));
  }

  setPredictions(path: string, marks: Map<number, LineMark>): void {
    this.dispatchTo(path, () => ({ effects: setPredictions.of(marks) }));
  }

  setLint(path: string, diagnostics: readonly LintDiagnostic[]): void {
    this.dispatchTo(path, (state) => setDiagnostics(state, diagnostics.flatMap((d) => toDiagnostic(state, d))));
  }

  focus(): void {
    this.view.focus();
  }
}

function toDiagnostic(state: State, d: LintDiagnostic): Diagnostic[] {
  const doc = state.doc;
  if (d.line < 1 || d.line > doc.lines) return [];
  const first = doc.line(d.line);
  const last = doc.line(Math.min(doc.lines, Math.max(d.line, d.end_line ?? d.line)));
  const from = Math.min(first.to, first.from + Math.max(0, (d.column ?? 1) - 1));
  const source = [d.source, d.code].filter(Boolean).join(" ");
  return [{ from, to: Math.max(from, last.to), severity: d.severity, message: d.message, source: source || undefined }];
}
