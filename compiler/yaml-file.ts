import { LineCounter, isMap, isPair, isScalar, isSeq, parseDocument, type Node, type Pair, type YAMLMap } from 'yaml';
import type { FaultList, Position } from './faults.js';

/**
 * One YAML file of a stack, parsed with the position of every node kept, so that each
 * fault can name its line and column. A file with syntax errors reports them (each at its
 * place) and has no `root`: checks that would only repeat the syntax error are skipped.
 */
export class YamlFile {
  readonly root: Node | null;
  /** False when the file has syntax errors (already reported). */
  readonly ok: boolean;
  private readonly lines = new LineCounter();

  constructor(readonly path: string, text: string, faults: FaultList) {
    const doc = parseDocument(text, { lineCounter: this.lines, uniqueKeys: true, prettyErrors: false });
    for (const error of doc.errors) {
      faults.add(this.atOffset(error.pos[0]), `${syntaxMessage(error.message)} (YAML syntax)`);
    }
    this.ok = doc.errors.length === 0;
    this.root = this.ok ? (doc.contents as Node | null) : null;
  }

  atOffset(offset: number): Position {
    const { line, col } = this.lines.linePos(offset);
    return { file: this.path, line, col };
  }

  /** Where a node starts; the file's first line when the node is missing. */
  at(node: Node | null | undefined): Position {
    const start = node?.range?.[0];
    return start === undefined ? { file: this.path, line: 1, col: 1 } : this.atOffset(start);
  }

  /** Where a character of a scalar's text is, accounting for an opening quote. */
  atChar(node: Node, index: number): Position {
    const quoted = isScalar(node) && (node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE');
    return this.atOffset((node.range?.[0] ?? 0) + (quoted ? 1 : 0) + index);
  }
}

function syntaxMessage(message: string): string {
  const first = message.split('\n')[0] ?? message;
  return first.replace(/ at line \d+, column \d+:?$/, '');
}

/** The pairs of a mapping, each with its key's text. Non-scalar keys are reported. */
export function entries(map: YAMLMap): Array<{ key: string; pair: Pair<Node, Node | null> }> {
  const out: Array<{ key: string; pair: Pair<Node, Node | null> }> = [];
  for (const item of map.items) {
    if (!isPair(item)) continue;
    const key = isScalar(item.key) ? String(item.key.value) : '';
    out.push({ key, pair: item as Pair<Node, Node | null> });
  }
  return out;
}

/** A short description of what a YAML node is, for "must be X, not Y" messages. */
export function describe(node: Node | null | undefined): string {
  if (node === null || node === undefined) return 'empty';
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) {
    const v = node.value;
    if (v === null) return 'empty';
    if (typeof v === 'string') return JSON.stringify(v);
    return String(v);
  }
  return 'something else';
}
