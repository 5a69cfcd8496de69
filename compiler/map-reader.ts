import { isMap, isScalar, isSeq, type Node, type YAMLMap } from 'yaml';
import type { FaultList, Position } from './faults.js';
import { didYouMean } from './suggest.js';
import { describe, entries, type YamlFile } from './yaml-file.js';

/**
 * Typed reads from one YAML mapping, each fault reported at its place and phrased around
 * `what` (e.g. "node 'web'"). Unknown keys are reported when the reader is made, with the
 * closest known key as a suggestion, so a typo never passes silently.
 */
export class MapReader {
  private readonly values = new Map<string, { key: Node; value: Node | null }>();

  constructor(
    readonly file: YamlFile,
    readonly faults: FaultList,
    readonly what: string,
    readonly node: YAMLMap,
    /** Where "missing key" faults point: the mapping's own key in its parent. */
    readonly anchor: Position,
    allowed: readonly string[],
  ) {
    for (const { key, pair } of entries(node)) {
      if (!allowed.includes(key)) {
        const guess = didYouMean(key, allowed) || ` (known keys: ${allowed.join(', ')})`;
        faults.add(file.at(pair.key), `${what}: unknown key '${key}'${guess}`);
        continue;
      }
      this.values.set(key, { key: pair.key, value: pair.value });
    }
  }

  /** Reads a mapping that must be one; reports and returns undefined otherwise. */
  static of(
    file: YamlFile, faults: FaultList, what: string, node: Node | null | undefined,
    anchor: Position, allowed: readonly string[],
  ): MapReader | undefined {
    if (!isMap(node)) {
      faults.add(node ? file.at(node) : anchor, `${what} must be a mapping, not ${describe(node)}`);
      return undefined;
    }
    return new MapReader(file, faults, what, node, anchor, allowed);
  }

  /** Whether the key is there with a value (`key:` alone counts as absent). */
  has(key: string): boolean {
    const value = this.values.get(key)?.value;
    return value !== undefined && value !== null && !(isScalar(value) && value.value === null);
  }

  raw(key: string): Node | null | undefined {
    return this.values.get(key)?.value;
  }

  keyAt(key: string): Position {
    const entry = this.values.get(key);
    return entry ? this.file.at(entry.key) : this.anchor;
  }

  valueAt(key: string): Position {
    const entry = this.values.get(key);
    if (!entry) return this.anchor;
    return entry.value ? this.file.at(entry.value) : this.file.at(entry.key);
  }

  private fault(key: string, message: string): undefined {
    this.faults.add(this.valueAt(key), `${this.what}: ${message}`);
    return undefined;
  }

  private scalar(key: string): unknown {
    const value = this.raw(key);
    if (value === undefined || value === null) return undefined;
    if (!isScalar(value)) return { notScalar: value };
    return value.value ?? undefined;
  }

  string(key: string, hint = ''): string | undefined {
    if (!this.has(key)) return undefined;
    const value = this.scalar(key);
    if (typeof value !== 'string') return this.fault(key, `'${key}' must be text${hint}, not ${describe(this.raw(key))}`);
    return value;
  }

  /** A whole number within bounds. A quoted "8080" is refused: it is text in YAML. */
  int(key: string, min: number, max: number, unit = ''): number | undefined {
    if (!this.has(key)) return undefined;
    const value = this.scalar(key);
    const range = max === Number.MAX_SAFE_INTEGER ? `${min} or more` : `from ${min} to ${max}`;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      return this.fault(key, `'${key}' must be a whole number ${range}${unit}, not ${describe(this.raw(key))}`);
    }
    return value;
  }

  number(key: string, min: number): number | undefined {
    if (!this.has(key)) return undefined;
    const value = this.scalar(key);
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
      return this.fault(key, `'${key}' must be a number ${min} or more, not ${describe(this.raw(key))}`);
    }
    return value;
  }

  bool(key: string): boolean | undefined {
    if (!this.has(key)) return undefined;
    const value = this.scalar(key);
    if (typeof value !== 'boolean') return this.fault(key, `'${key}' must be true or false, not ${describe(this.raw(key))}`);
    return value;
  }

  /** One of a fixed set of words. */
  oneOf<T extends string>(key: string, choices: readonly T[], report = true): T | undefined {
    const value = report ? this.string(key) : this.scalar(key);
    if (typeof value !== 'string') return undefined;
    if (!(choices as readonly string[]).includes(value)) {
      if (!report) return undefined;
      return this.fault(key, `'${key}' must be one of ${choices.join(', ')}, not '${value}'${didYouMean(value, choices)}`);
    }
    return value as T;
  }

  /** A list of text items, each returned with its node for positions. */
  stringList(key: string): Array<{ value: string; node: Node }> | undefined {
    if (!this.has(key)) return undefined;
    const value = this.raw(key);
    if (!isSeq(value)) return this.fault(key, `'${key}' must be a list, not ${describe(value)}`);
    const out: Array<{ value: string; node: Node }> = [];
    for (const item of value.items as Node[]) {
      if (!isScalar(item) || typeof item.value !== 'string') {
        this.faults.add(this.file.at(item), `${this.what}: each of '${key}' must be text, not ${describe(item)}`);
        continue;
      }
      out.push({ value: item.value, node: item });
    }
    return out;
  }

  /** A mapping value, read with its own allowed keys. */
  map(key: string, what: string, allowed: readonly string[]): MapReader | undefined {
    if (!this.has(key)) return undefined;
    return MapReader.of(this.file, this.faults, what, this.raw(key), this.keyAt(key), allowed);
  }
}
