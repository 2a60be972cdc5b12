// How much prompt diffuse reads. Each 75-token chunk adds 77 keys to every cross-attention of
// every UNet call, so prompt length is memory and time; bracket nesting is recursion depth in the
// prompt parsers. Prompts people write are a few chunks and a handful of levels deep.

/** Characters in one prompt (or negative prompt). */
export const MAX_PROMPT_CHARS = 16 * 1024;
/** 75-token chunks of one encoded prompt: 2,400 tokens. */
export const MAX_PROMPT_CHUNKS = 32;
/** Levels of ( and [ inside one another. */
export const MAX_PROMPT_NESTING = 100;

/** The deepest nesting of unescaped ( and [ (a closing bracket of either kind ends a level). */
export function promptNesting(prompt: string): number {
  let depth = 0;
  let deepest = 0;
  for (let i = 0; i < prompt.length; i++) {
    const c = prompt[i];
    if (c === '\\') i++;
    else if (c === '(' || c === '[') deepest = Math.max(deepest, ++depth);
    else if ((c === ')' || c === ']') && depth > 0) depth--;
  }
  return deepest;
}

/** What is wrong with a prompt's size, or undefined; `label` names it ("the prompt", "--negative-prompt"). */
export function promptLimitProblem(prompt: string, label: string): string | undefined {
  if (prompt.length > MAX_PROMPT_CHARS) {
    return `${label} is ${prompt.length} characters; at most ${MAX_PROMPT_CHARS} are read (each 75 tokens add to the UNet's memory and time): shorten it`;
  }
  const nesting = promptNesting(prompt);
  if (nesting > MAX_PROMPT_NESTING) {
    return `${label} nests brackets ${nesting} levels deep; at most ${MAX_PROMPT_NESTING} are read (escape literal brackets as \\( and \\[)`;
  }
  return undefined;
}

/** The chunk count check, made where a prompt is encoded. */
export function chunkLimitProblem(chunks: number): string | undefined {
  if (chunks <= MAX_PROMPT_CHUNKS) return undefined;
  return `a prompt of ${chunks} chunks of 75 tokens is too long; at most ${MAX_PROMPT_CHUNKS} (${MAX_PROMPT_CHUNKS * 75} tokens) are encoded: shorten it`;
}
