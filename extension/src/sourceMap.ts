// The rendered view's source map: `cutlens/rendered` answers, for each rendered line, the
// template line it came from (or null). Rendered → template is an index; template → rendered
// inverts it. Jinja-only lines (`{% for %}`, front matter) render to nothing, so a template
// line without output maps to the nearest line that has some.
import type { LineOrigin } from './protocol';

/** Compares file URIs the way servers and VS Code may spell them differently (%-escapes, drive case). */
export function sameUri(a: string, b: string): boolean {
  return normalizeUri(a) === normalizeUri(b);
}

export function normalizeUri(u: string): string {
  let s = u;
  try {
    s = decodeURIComponent(u);
  } catch {
    // keep as is
  }
  // file:///C:/x and file:///c:/x are the same file
  return s.replace(/^file:\/\/\/([A-Za-z]):/, (_m, d: string) => `file:///${d.toLowerCase()}:`);
}

export class RenderedLineMap {
  private readonly byTemplateLine = new Map<number, number[]>();
  private readonly sortedTemplateLines: number[];

  constructor(
    private readonly lines: readonly (LineOrigin | null)[],
    templateUri: string,
  ) {
    const target = normalizeUri(templateUri);
    lines.forEach((origin, rendered) => {
      if (!origin || normalizeUri(origin.uri) !== target) return;
      const list = this.byTemplateLine.get(origin.line);
      if (list) list.push(rendered);
      else this.byTemplateLine.set(origin.line, [rendered]);
    });
    this.sortedTemplateLines = [...this.byTemplateLine.keys()].sort((x, y) => x - y);
  }

  get renderedLineCount(): number {
    return this.lines.length;
  }

  /** The template line a rendered line came from (null: generated text, or another file). */
  toTemplate(renderedLine: number): LineOrigin | null {
    return this.lines[renderedLine] ?? null;
  }

  /** Every rendered line produced by exactly this template line (several for loop bodies). */
  renderedLinesOf(templateLine: number): number[] {
    return this.byTemplateLine.get(templateLine) ?? [];
  }

  /**
   * Rendered lines for a template line: its own, else those of the nearest template line with
   * output (the following one on a tie, since a Jinja tag usually heads what it produces).
   * Empty when nothing in this template produced output.
   */
  toRendered(templateLine: number): number[] {
    const own = this.renderedLinesOf(templateLine);
    if (own.length) return own;
    const keys = this.sortedTemplateLines;
    if (!keys.length) return [];
    // binary search for the first key > templateLine
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (keys[mid] <= templateLine) lo = mid + 1;
      else hi = mid;
    }
    const after = lo < keys.length ? keys[lo] : undefined;
    const before = lo > 0 ? keys[lo - 1] : undefined;
    let pick: number;
    if (after === undefined) pick = before as number;
    else if (before === undefined) pick = after;
    else pick = after - templateLine <= templateLine - before ? after : before;
    return this.renderedLinesOf(pick);
  }
}
