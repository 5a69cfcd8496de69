import type { Instruction } from './model.js';

/** One line of detail per instruction, for people; `--json` gives the whole data. */
export function describeInstruction(step: Instruction): string {
  switch (step.op) {
    case 'ENSURE':
      return [`image ${step.image}`, `${step.memory} MB`, step.port !== undefined && `port ${step.port}`]
        .filter(Boolean).join(', ');
    case 'DEPLOY': {
      const size = step.shard
        ? `${step.scale} × ${step.memory} MB (shard ${step.shard.min}..${step.shard.max} by ${step.shard.by})`
        : `${step.scale} × ${step.memory} MB`;
      const env = Object.keys(step.env);
      return [
        step.build?.class ? `class ${step.build.class}` : `image ${step.image}`, size,
        step.port !== undefined && `port ${step.port}`, step.health && `health ${step.health}`,
        env.length > 0 && `env ${env.join(' ')}`,
      ].filter(Boolean).join(', ');
    }
    case 'SCALE':
      return `${step.from} → ${step.to} containers`;
    case 'ROUTE':
      return step.domains.length ? step.domains.join(' ') : `no domains (was ${step.from.join(' ')})`;
    case 'KILL':
      return `stop and remove every container of this ${step.kind}`;
  }
}

export function targetOf(step: Instruction): string {
  if ('element' in step && step.element !== undefined) return `element ${step.element}`;
  return `node ${(step as { node: string }).node}`;
}

/** The plan as an aligned table. */
export function formatPlan(stack: string, instructions: Instruction[]): string {
  if (instructions.length === 0) return `${stack}: nothing to do; what runs is what the stack asks for\n`;
  const rows = instructions.map((s) => [s.op, targetOf(s), describeInstruction(s)] as const);
  const w0 = Math.max(2, ...rows.map((r) => r[0].length));
  const w1 = Math.max(4, ...rows.map((r) => r[1].length));
  const lines = [`${'OP'.padEnd(w0)}  ${'WHAT'.padEnd(w1)}  DETAILS`, ...rows.map((r) => `${r[0].padEnd(w0)}  ${r[1].padEnd(w1)}  ${r[2]}`)];
  const n = instructions.length;
  return `plan for ${stack}: ${n} instruction${n === 1 ? '' : 's'}\n${lines.join('\n')}\n`;
}
