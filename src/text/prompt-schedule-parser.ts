// A1111's prompt-editing grammar (modules/prompt_parser.py, a lark Earley grammar) as a hand-written
// parser. The grammar, in words: a prompt is a run of plain text, `(p)`, `(p:p)`, `[p]`,
// `[p:N]`/`[p:p:N]` (scheduled; N a signed number, spaces allowed around it) and `[p|p|...]`
// (alternate; options may be empty); at the top level, but nowhere inside brackets, the characters
// `[ ] ( ) :` may also stand alone. Plain text is anything but `\ [ ] ( ) : |`, or a backslash and any
// character other than a newline. A string with no parse at all (a `|` outside an alternate, a
// trailing backslash) is used verbatim.
//
// The grammar is ambiguous at the top level only (a `[` may open a group or stand alone; inside a group
// brackets must nest, so at most one group can start at a given bracket). This parser takes every
// group it can, leftmost first. That is lark's choice whenever no bracket or colon is left standing
// alone; when some are and the prompt also edits or alternates, lark's pick follows the internals of
// its Earley forest (e.g. "[a:1]:" edits but "[[a:1]]:" does not), and under lark 1.1.2, which A1111
// pins, it even changes with PYTHONHASHSEED. Such prompts are flagged `ambiguous`.
import { PY_SPACE } from './prompt-python-chars.js';

export type ScheduleNode =
  | { kind: 'text'; text: string }
  /** `[before:after:when]`; before is null in the two-part form `[after:when]`. */
  | { kind: 'scheduled'; before: ScheduleNode[] | null; after: ScheduleNode[]; when: string }
  | { kind: 'alternate'; options: ScheduleNode[][] };

// lark's common.SIGNED_NUMBER as lark compiles it; alternatives in the same order, since a regex
// alternation takes the first that matches (so "1e" is the INT "1").
const NUMBER = /[+-]?(?:[0-9]+[eE][+-]?[0-9]+|(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[0-9]+)/y;
const SPACES = new RegExp(`[${PY_SPACE}]+`, 'y');
// `([^\\\[\]():|]|\\.)+` with Python's `.` (anything but "\n").
const PLAIN = /(?:[^\\[\]():|]|\\[^\n])+/y;
const LOOSE = new Set(['[', ']', '(', ')', ':']);

export interface ParsedSchedulePrompt {
  nodes: ScheduleNode[];
  /** Stray brackets or colons next to editing/alternation: A1111 may read the prompt another way. */
  ambiguous: boolean;
}

/** The parse tree of a prompt, or undefined where lark finds no parse (A1111 then uses the prompt as it is). */
export function parseSchedulePrompt(prompt: string): ParsedSchedulePrompt | undefined {
  const nodes: ScheduleNode[] = [];
  let stray = false;
  let pos = 0;
  while (pos < prompt.length) {
    const inner = parseSequence(prompt, pos);
    nodes.push(...inner.nodes);
    pos = inner.end;
    if (pos >= prompt.length) break;
    // parseSequence stopped at a character it cannot place: at the top level it may stand alone.
    if (!LOOSE.has(prompt[pos]!)) return undefined;
    pushText(nodes, prompt[pos]!);
    stray = true;
    pos++;
  }
  return { nodes, ambiguous: stray && nodes.some((node) => node.kind !== 'text') };
}

interface Parsed<T> {
  nodes: T;
  end: number;
}

/** The longest `prompt` from pos: stops at a character that only a group or the top level can place. */
function parseSequence(s: string, pos: number): Parsed<ScheduleNode[]> {
  const nodes: ScheduleNode[] = [];
  for (;;) {
    const plain = matchAt(PLAIN, s, pos);
    if (plain !== undefined) {
      pushText(nodes, plain);
      pos += plain.length;
      continue;
    }
    const group = s[pos] === '[' ? parseSquare(s, pos) : s[pos] === '(' ? parseRound(s, pos) : undefined;
    if (group === undefined) return { nodes, end: pos };
    for (const node of group.nodes) node.kind === 'text' ? pushText(nodes, node.text) : nodes.push(node);
    pos = group.end;
  }
}

/** `(p)` or `(p:p)`, kept verbatim apart from groups inside. */
function parseRound(s: string, pos: number): Parsed<ScheduleNode[]> | undefined {
  const first = parseSequence(s, pos + 1);
  const nodes: ScheduleNode[] = [{ kind: 'text', text: '(' }, ...first.nodes];
  let end = first.end;
  if (s[end] === ':') {
    const second = parseSequence(s, end + 1);
    nodes.push({ kind: 'text', text: ':' }, ...second.nodes);
    end = second.end;
  }
  if (s[end] !== ')') return undefined;
  nodes.push({ kind: 'text', text: ')' });
  return { nodes, end: end + 1 };
}

/** `[p]` (kept verbatim), `[p:N]`, `[p:p:N]` or `[p|p...]`. */
function parseSquare(s: string, pos: number): Parsed<ScheduleNode[]> | undefined {
  const first = parseSequence(s, pos + 1);
  const after = s[first.end];
  if (after === ']') {
    return { nodes: [{ kind: 'text', text: '[' }, ...first.nodes, { kind: 'text', text: ']' }], end: first.end + 1 };
  }
  if (after === '|') {
    const options = [first.nodes];
    let end = first.end;
    while (s[end] === '|') {
      const option = parseSequence(s, end + 1);
      options.push(option.nodes);
      end = option.end;
    }
    if (s[end] !== ']') return undefined;
    return { nodes: [{ kind: 'alternate', options }], end: end + 1 };
  }
  if (after !== ':') return undefined;
  const short = parseWhen(s, first.end + 1);
  if (short !== undefined) {
    return { nodes: [{ kind: 'scheduled', before: null, after: first.nodes, when: short.nodes }], end: short.end };
  }
  const second = parseSequence(s, first.end + 1);
  if (s[second.end] !== ':') return undefined;
  const when = parseWhen(s, second.end + 1);
  if (when === undefined) return undefined;
  return { nodes: [{ kind: 'scheduled', before: first.nodes, after: second.nodes, when: when.nodes }], end: when.end };
}

/** `[WHITESPACE] NUMBER [WHITESPACE] "]"`: the number's text and the position after the bracket. */
function parseWhen(s: string, pos: number): Parsed<string> | undefined {
  pos += matchAt(SPACES, s, pos)?.length ?? 0;
  const number = matchAt(NUMBER, s, pos);
  if (number === undefined) return undefined;
  pos += number.length;
  pos += matchAt(SPACES, s, pos)?.length ?? 0;
  return s[pos] === ']' ? { nodes: number, end: pos + 1 } : undefined;
}

function matchAt(pattern: RegExp, s: string, pos: number): string | undefined {
  pattern.lastIndex = pos;
  return pattern.exec(s)?.[0];
}

function pushText(nodes: ScheduleNode[], text: string): void {
  const last = nodes[nodes.length - 1];
  if (last?.kind === 'text') last.text += text;
  else nodes.push({ kind: 'text', text });
}
