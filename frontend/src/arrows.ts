// The arrows of a multi-stage build: from the top of the stage a COPY --from copies out of, to the
// band that copies. Drawn in one SVG laid over the stacks, measured from where the bands are.

export interface Arrow {
  fromStage: string;
  toStep: number;
  /** The top band of the source stage, filled in once the columns are laid out. */
  fromStep?: number;
}

const SVG = "http://www.w3.org/2000/svg";

export function drawArrows(svg: SVGSVGElement, container: HTMLElement, arrows: readonly Arrow[], band: (step: number) => HTMLElement | null): void {
  const box = container.getBoundingClientRect();
  // Sized by the stylesheet to the container: sized from its scroll size, the layer would hold
  // the page as wide as the window it was last drawn in.
  const parts: SVGElement[] = [];
  const marker = document.createElementNS(SVG, "defs");
  marker.innerHTML = '<marker id="stage-arrow-head" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"></path></marker>';
  parts.push(marker);
  for (const arrow of arrows) {
    const from = arrow.fromStep === undefined ? null : band(arrow.fromStep);
    const to = band(arrow.toStep);
    if (!from || !to) continue;
    const a = from.getBoundingClientRect();
    const b = to.getBoundingClientRect();
    const y1 = a.top + a.height / 2 - box.top;
    const y2 = b.top + b.height / 2 - box.top;
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", arrowPath(a, b, box, y1, y2));
    path.setAttribute("marker-end", "url(#stage-arrow-head)");
    path.classList.add("stage-arrow");
    path.dataset["to"] = String(arrow.toStep);
    parts.push(path);
  }
  svg.replaceChildren(...parts);
}

/** A curve from one band's side to the other's. Stages wrapped into one column (a narrow window)
 * get a loop out to the left, in the gap beside the column, rather than a curve across the bands. */
function arrowPath(a: DOMRect, b: DOMRect, box: DOMRect, y1: number, y2: number): string {
  if (Math.abs(a.left - b.left) < 2) {
    const x = a.left - box.left;
    const out = x - 18;
    return `M${x},${y1} C${out},${y1} ${out},${y2} ${x},${y2}`;
  }
  const leftToRight = a.left < b.left;
  const x1 = (leftToRight ? a.right : a.left) - box.left;
  const x2 = (leftToRight ? b.left : b.right) - box.left;
  const bend = Math.max(24, Math.abs(x2 - x1) / 2);
  return `M${x1},${y1} C${x1 + (leftToRight ? bend : -bend)},${y1} ${x2 - (leftToRight ? bend : -bend)},${y2} ${x2},${y2}`;
}
