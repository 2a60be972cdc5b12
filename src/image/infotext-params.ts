// A1111's re_param, `\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)`, and Python's str.strip(),
// in linear time. As regular expressions both backtrack: a parameter line of 80,000 letters and no
// colon takes the regex O(n²) steps (23 s), a run of spaces before a letter takes the strip as long.
// The scanner finds exactly the regex's matches: a key is a maximal run of [\w \-/] that a colon
// ends (the colon is not in the run's class, so no shorter key can end at one), so a start that
// fails fails for every later start inside the same run, and the search resumes after it.

const PY_SPACE = '\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const PY_WORD = '\\p{L}\\p{N}_';
/** Python's str.isspace() set, as character classes for other patterns. */
export const PY_SPACE_CLASS = `[${PY_SPACE}]`;
export const PY_WORD_CLASS = `[${PY_WORD}]`;

const SPACE = new RegExp(`^${PY_SPACE_CLASS}$`, 'u');
const WORD = new RegExp(`^${PY_WORD_CLASS}$`, 'u');
const KEY_CHAR = new RegExp(`^[${PY_WORD} \\-/]$`, 'u');
// The quoted value, tried at one position: `"(?:\\[^\n]|[^\\"])+"` (its parse is unique, so no backtracking).
const QUOTED = /"(?:\\[^\n]|[^\\"])+"/y;

/** The code point at i as a string, and its length in UTF-16 units. */
function charAt(s: string, i: number): string {
  const code = s.codePointAt(i)!;
  return String.fromCodePoint(code);
}

function skip(s: string, i: number, test: RegExp): number {
  while (i < s.length) {
    const c = charAt(s, i);
    if (!test.test(c)) break;
    i += c.length;
  }
  return i;
}

/** Python's str.strip(). */
export function pyStrip(s: string): string {
  let start = 0;
  while (start < s.length && SPACE.test(s[start]!)) start++;
  let end = s.length;
  while (end > start && SPACE.test(s[end - 1]!)) end--;
  return s.slice(start, end);
}

/** re.findall(re_param, line): each key and its raw value, in order. */
export function paramMatches(line: string): Array<[key: string, raw: string]> {
  const out: Array<[string, string]> = [];
  let pos = 0;
  while (pos < line.length) {
    const keyStart = skip(line, pos, SPACE);
    if (keyStart >= line.length) break;
    const first = charAt(line, keyStart);
    if (!WORD.test(first)) {
      pos = keyStart + first.length;
      continue;
    }
    const keyEnd = skip(line, keyStart + first.length, KEY_CHAR);
    if (keyEnd === keyStart + first.length || line[keyEnd] !== ':') {
      pos = keyEnd;
      continue;
    }
    const valueStart = skip(line, keyEnd + 1, SPACE);
    QUOTED.lastIndex = valueStart;
    const quoted = QUOTED.exec(line)?.[0];
    let valueEnd: number;
    if (quoted !== undefined && (valueStart + quoted.length === line.length || line[valueStart + quoted.length] === ',')) {
      valueEnd = valueStart + quoted.length;
    } else {
      const comma = line.indexOf(',', valueStart);
      valueEnd = comma === -1 ? line.length : comma;
    }
    out.push([line.slice(keyStart, keyEnd), line.slice(valueStart, valueEnd)]);
    pos = valueEnd < line.length ? valueEnd + 1 : valueEnd;
  }
  return out;
}
