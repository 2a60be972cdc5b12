// Text from files (a PNG's chunks, a registry, a model's config) reaches the terminal only through
// here: control characters, the C1 range and bidirectional overrides become visible escapes, so a
// file cannot move the cursor, retitle the window or reorder what is shown.

const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
const UNSAFE_OR_NEWLINE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

const escape = (c: string): string => {
  const code = c.charCodeAt(0);
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
};

/** `text` safe to print: escapes for everything that is not printable (newlines kept when asked). */
export function terminalText(text: string, options: { keepNewlines?: boolean } = {}): string {
  return text.replace(options.keepNewlines ? UNSAFE : UNSAFE_OR_NEWLINE, escape);
}

/** The longest error line printed; a longer message is cut (a file can put anything into one). */
export const MAX_MESSAGE_CHARS = 500;

/** A message as one printable line of at most MAX_MESSAGE_CHARS characters. */
export function oneLine(message: string): string {
  const flat = terminalText(message.replace(/\s*\r?\n\s*/g, '; '));
  const chars = [...flat];
  return chars.length <= MAX_MESSAGE_CHARS ? flat : `${chars.slice(0, MAX_MESSAGE_CHARS - 1).join('')}…`;
}

/** Names from a file, for a message: the first few, each shortened, and how many more there are. */
export function listForTerminal(items: readonly string[], shown = 5): string {
  const short = (s: string) => (s.length > 40 ? `${s.slice(0, 39)}…` : s);
  const head = items.slice(0, shown).map((s) => JSON.stringify(short(s))).join(', ');
  return items.length > shown ? `${head} and ${items.length - shown} more` : head;
}
