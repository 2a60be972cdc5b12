import { createHash } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { UsageError } from '../../errors.js';
import { readInputFileSync } from '../../input-file.js';
import { pythonStrip } from '../../text/text-normalize.js';

/** A1111's interrogate_clip_dict_limit default: only a list's first 1500 lines are ranked. */
export const DICT_LIMIT = 1500;
/** clip-interrogator's flavors.txt is a few MB; a list far bigger is not a term list. */
const MAX_TERM_LIST_BYTES = 64 * 2 ** 20;
// A1111 looks for ".topN." in the file's stem: "flavors.top3" has no dot after the number, so 1 term
const TOP_N = /\.top(\d+)\./;

export interface TermList {
  /** The file's stem, A1111's category name. */
  name: string;
  /** How many of its terms the classic mode keeps. */
  topn: number;
  /** Its lines, stripped, blank ones kept (A1111 ranks them too), at most DICT_LIMIT. */
  items: string[];
  /** SHA-256 of the file's bytes: the text-feature cache's key. */
  sha256: string;
}

/**
 * A1111's InterrogateModels.categories(): every *.txt in the folder, one term per line. A1111 takes the
 * directory's order, which depends on the file system; here the names are sorted, so the prompt's order is the
 * same everywhere. A list with no terms is refused (A1111 fails inside CLIP on one).
 */
export function readTermLists(dir: string): TermList[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new UsageError(`term lists folder not found: ${dir} (pass --terms a folder of .txt files, one term per line; see the README's img2txt section)`);
  }
  const names = readdirSync(dir)
    .filter((f) => f.endsWith('.txt') && statSync(join(dir, f)).isFile())
    .sort();
  if (names.length === 0) throw new UsageError(`no term lists (*.txt) in ${dir}: put one term per line in files such as mediums.txt, artists.txt`);
  return names.map((file) => {
    const path = join(dir, file);
    const bytes = readInputFileSync(path, { label: '--terms', maxBytes: MAX_TERM_LIST_BYTES });
    const stem = basename(file, '.txt');
    const match = TOP_N.exec(stem);
    // Python's readlines() in text mode: \n, \r\n and \r end a line; a final newline makes no empty line
    const lines = bytes.toString('utf8').split(/\r\n|\r|\n/);
    if (lines.at(-1) === '') lines.pop();
    const items = lines.map(pythonStrip).slice(0, DICT_LIMIT);
    if (items.every((t) => t === '')) throw new UsageError(`term list ${path} has no terms: put one term per line, or remove the file`);
    return { name: stem, topn: match ? Number(match[1]) : 1, items, sha256: createHash('sha256').update(bytes).digest('hex') };
  });
}

