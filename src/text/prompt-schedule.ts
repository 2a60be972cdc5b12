// Prompt editing and alternation over the sampling steps, as A1111's
// get_learned_conditioning_prompt_schedules: each prompt becomes a list of (endStep, text): the text to
// condition on for steps up to and including endStep (1-based). In a hires fix's second pass the steps
// count on from the first pass (its hires offsets): `[a:b:25]` after 20 first-pass steps switches at the
// second pass's step 5, `[a:b:1.5]` halfway through it.
import { PromptError } from './prompt-error.js';
import { parseSchedulePrompt, type ScheduleNode } from './prompt-schedule-parser.js';

export interface ScheduledPrompt {
  /** Last sampling step (1-based) that uses this text. */
  endStep: number;
  text: string;
}

/**
 * The schedule of one prompt for a run of `steps` sampling steps; `firstPassSteps`: the run is a hires
 * fix's second pass after a first pass of that many steps (A1111's hires_steps argument).
 */
export function promptSchedule(prompt: string, steps: number, firstPassSteps?: number): ScheduledPrompt[] {
  const tree = parseSchedulePrompt(prompt)?.nodes;
  if (tree === undefined) return [{ endStep: steps, text: prompt }];
  const switches = new Set<number>([steps]);
  const stepOf = new Map<ScheduleNode, number>();
  resolveSteps(tree, { steps, ...(firstPassSteps !== undefined ? { firstPassSteps } : {}) }, switches, stepOf);
  return [...switches].sort((a, b) => a - b).map((endStep) => ({ endStep, text: render(tree, endStep, stepOf) }));
}

/**
 * Whether A1111 might schedule this prompt differently: stray brackets next to prompt editing, where its
 * parser's choice is an accident of lark's internals (see prompt-schedule-parser.ts).
 */
export function scheduleIsAmbiguous(prompt: string): boolean {
  return parseSchedulePrompt(prompt)?.ambiguous ?? false;
}

/** The steps a schedule runs over, and the first pass's before them (a hires fix's second pass). */
export interface ScheduleClock {
  steps: number;
  firstPassSteps?: number;
}

/**
 * Step at which a `[..:when]` switches, per A1111: with a "." the number is a fraction of the steps.
 * In a second pass the first pass is taken off: its steps from a whole number, 1 from a fraction.
 */
export function scheduleSwitchStep(when: string, { steps, firstPassSteps }: ScheduleClock): number {
  const value = Number(when);
  const hires = firstPassSteps !== undefined;
  const scaled = when.includes('.') ? (hires ? value - 1 : value) * steps : hires ? value - firstPassSteps : value;
  // Python's int() of an infinite float raises OverflowError, and the generation stops.
  if (!Number.isFinite(scaled)) throw new PromptError(`prompt editing step "${when}" is out of range`);
  return Math.min(steps, Math.trunc(scaled));
}

// Every [..:when] in the tree counts, even one inside a branch that is never shown, and an
// alternation anywhere switches at every step.
function resolveSteps(nodes: readonly ScheduleNode[], clock: ScheduleClock, switches: Set<number>, stepOf: Map<ScheduleNode, number>): void {
  for (const node of nodes) {
    if (node.kind === 'scheduled') {
      const step = scheduleSwitchStep(node.when, clock);
      stepOf.set(node, step);
      if (step >= 1) switches.add(step);
      if (node.before !== null) resolveSteps(node.before, clock, switches, stepOf);
      resolveSteps(node.after, clock, switches, stepOf);
    } else if (node.kind === 'alternate') {
      for (let step = 1; step <= clock.steps; step++) switches.add(step);
      for (const option of node.options) resolveSteps(option, clock, switches, stepOf);
    }
  }
}

function render(nodes: readonly ScheduleNode[], step: number, stepOf: ReadonlyMap<ScheduleNode, number>): string {
  let out = '';
  for (const node of nodes) {
    if (node.kind === 'text') out += node.text;
    else if (node.kind === 'alternate') out += render(node.options[(step - 1) % node.options.length]!, step, stepOf);
    else if (step <= stepOf.get(node)!) out += node.before === null ? '' : render(node.before, step, stepOf);
    else out += render(node.after, step, stepOf);
  }
  return out;
}
