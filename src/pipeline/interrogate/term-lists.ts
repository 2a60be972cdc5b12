import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { ModelLoadError, UsageError } from '../../errors.js';
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
 * The lists ranked when no --terms folder is given: pharmapsychotic/clip-interrogator 0.6.0's (MIT, licence beside
 * them), the four A1111 downloads on first use, gzipped with their bytes untouched by tools/make_term_assets.py.
 */
export const SHIPPED_TERMS = {
  source: 'clip-interrogator 0.6.0 (MIT), shipped',
  lists: {
    artists: '01e4b30f6d7cfdb62f4582c5bec658e02d79bf9c19052949ce3336d6eff4d395',
    flavors: 'c99d83a7a435157339f3b60a34794c524de37159a9b72f3a2034df8245c4a2f1',
    mediums: '91f26b9d0d7d93f8e30139a94f895ba5a97744033ec0b174539f3a88bc49cd2c',
    movements: '16d60ecb48901885e877ca9243b3c32bc84a2477c4d3f0a1cf6d66086ce47483',
  } as Record<string, string>,
};
const SHIPPED_DIR = new URL('../../../../assets/interrogate-terms/', import.meta.url);

/** The shipped lists, each checked against its pinned SHA-256 (a damaged install is named, not ranked). */
export function shippedTermLists(): TermList[] {
  return Object.entries(SHIPPED_TERMS.lists).map(([name, sha256]) => {
    const url = new URL(`${name}.txt.gz`, SHIPPED_DIR);
    let bytes: Buffer;
    try {
      bytes = gunzipSync(readFileSync(url));
    } catch (err) {
      throw new ModelLoadError(`shipped term list ${url.pathname} cannot be read (${(err as Error).message}); reinstall diffuse or pass --terms DIR`);
    }
    const list = termList(name, bytes, url.pathname);
    if (list.sha256 !== sha256) throw new ModelLoadError(`shipped term list ${url.pathname} is damaged (SHA-256 ${list.sha256}); reinstall diffuse or pass --terms DIR`);
    return list;
  });
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
    return termList(basename(file, '.txt'), readInputFileSync(path, { label: '--terms', maxBytes: MAX_TERM_LIST_BYTES }), path);
  });
}

function termList(stem: string, bytes: Buffer, path: string): TermList {
  const match = TOP_N.exec(stem);
  // Python's readlines() in text mode: \n, \r\n and \r end a line; a final newline makes no empty line
  const lines = bytes.toString('utf8').split(/\r\n|\r|\n/);
  if (lines.at(-1) === '') lines.pop();
  const items = lines.map(pythonStrip).slice(0, DICT_LIMIT);
  if (items.every((t) => t === '')) throw new UsageError(`term list ${path} has no terms: put one term per line, or remove the file`);
  return { name: stem, topn: match ? Number(match[1]) : 1, items, sha256: createHash('sha256').update(bytes).digest('hex') };
}
