// The topology's layout: elkjs' layered algorithm places the elements (and the nodes that
// connections reach) left to right and routes the connections between them.
import ELK, { type ElkNode } from 'elkjs/lib/elk.bundled.js';
import type { TopView } from '../../hq/index.js';

export const BOX = { width: 190, height: 70 };

export interface PlacedBox { name: string; x: number; y: number; isElement: boolean }
export interface PlacedEdge { id: string; points: Array<{ x: number; y: number }> }
export interface Layout { key: string; width: number; height: number; boxes: PlacedBox[]; edges: PlacedEdge[] }

export const edgeId = (c: TopView['connections'][number]) => `${c.from.name}.${c.from.port}->${c.to.name}.${c.to.port}`;

/** What the layout depends on: the names and the connections, not the figures. */
export function structureKey(view: TopView): string {
  return JSON.stringify([view.elements.map((e) => e.name), view.connections.map(edgeId)]);
}

const elk = new ELK();

export async function layOut(view: TopView): Promise<Layout> {
  const elements = new Set(view.elements.map((e) => e.name));
  const names = [...elements];
  for (const c of view.connections) for (const end of [c.from.name, c.to.name]) if (!names.includes(end)) names.push(end);
  const input: ElkNode = {
    id: 'stack',
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'RIGHT',
      'elk.spacing.nodeNode': '30',
      'elk.layered.spacing.nodeNodeBetweenLayers': '170',
      'elk.spacing.edgeNode': '40',
      'elk.edgeRouting': 'POLYLINE',
      'elk.padding': '[top=20,left=20,bottom=20,right=20]',
    },
    children: names.map((name) => ({ id: name, ...BOX })),
    edges: view.connections.map((c) => ({ id: edgeId(c), sources: [c.from.name], targets: [c.to.name] })),
  };
  const graph = await elk.layout(input);
  return {
    key: structureKey(view),
    width: graph.width ?? 0,
    height: graph.height ?? 0,
    boxes: (graph.children ?? []).map((n) => ({ name: n.id, x: n.x ?? 0, y: n.y ?? 0, isElement: elements.has(n.id) })),
    edges: (graph.edges ?? []).map((e) => ({
      id: e.id,
      points: (e.sections ?? []).flatMap((s) => [s.startPoint, ...(s.bendPoints ?? []), s.endPoint]),
    })),
  };
}

/** The point halfway along a polyline, where a connection's figures are written. */
export function midpoint(points: Array<{ x: number; y: number }>): { x: number; y: number } {
  if (points.length === 0) return { x: 0, y: 0 };
  const lengths = points.slice(1).map((p, i) => Math.hypot(p.x - points[i]!.x, p.y - points[i]!.y));
  let left = lengths.reduce((a, b) => a + b, 0) / 2;
  for (let i = 0; i < lengths.length; i++) {
    const len = lengths[i]!;
    if (left <= len && len > 0) {
      const a = points[i]!;
      const b = points[i + 1]!;
      return { x: a.x + ((b.x - a.x) * left) / len, y: a.y + ((b.y - a.y) * left) / len };
    }
    left -= len;
  }
  return points[points.length - 1]!;
}
