import { isAbsolute } from 'node:path';
import { InvalidModelRefError } from './errors.js';

/**
 * What `--model` (or a `diffuse models` argument) names:
 *   - an id: a registry entry or a folder registered with `diffuse models add`;
 *   - `hf:org/repo[@revision]`: any diffusers ONNX repo on the Hub (revision defaults to main);
 *   - a filesystem path: anything with a slash or backslash, or starting with `.` or `~`.
 * A bare `org/repo` is a path; resolve.ts suggests `hf:` when no such folder exists.
 */
export type ModelRef =
  | { kind: 'id'; id: string }
  | { kind: 'hf'; repo: string; revision: string }
  | { kind: 'path'; path: string };

export const DEFAULT_REVISION = 'main';

const ID = /^[a-z0-9][a-z0-9._-]{0,63}$/;
// The Hub's own rule for each half of a repo id (huggingface_hub validate_repo_id).
const REPO_PART = /^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/;
const REVISION = /^[A-Za-z0-9._/-]{1,255}$/;
// C0 controls, DEL and C1 controls: never part of a name a user meant to type.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** Registry and local ids: lower case, digits, `.`, `_`, `-`; no path syntax at all. */
export function validateId(id: string): string | undefined {
  if (CONTROL.test(id)) return 'contains control characters';
  if (!ID.test(id)) return 'must be 1-64 characters of a-z, 0-9, ".", "_", "-", starting with a letter or digit';
  if (id.includes('..')) return 'must not contain ".."';
  return undefined;
}

/** `org/name` exactly: two parts, no `..`, `--`, leading dot or dash, no third slash. */
export function validateRepoId(repo: string): string | undefined {
  if (CONTROL.test(repo)) return 'contains control characters';
  const parts = repo.split('/');
  if (parts.length !== 2) return 'must be exactly "org/name"';
  for (const part of parts) {
    if (!REPO_PART.test(part)) return `"${part}" must be letters, digits, ".", "_", "-", starting with a letter or digit`;
    if (part.includes('..') || part.includes('--')) return `"${part}" must not contain ".." or "--"`;
    if (part.endsWith('.') || part.endsWith('-')) return `"${part}" must not end with "." or "-"`;
  }
  return undefined;
}

/** Branch, tag or commit; may hold slashes (refs/pr/1) but never `.`/`..` segments. */
export function validateRevision(revision: string): string | undefined {
  if (CONTROL.test(revision)) return 'contains control characters';
  if (!REVISION.test(revision)) return 'must be letters, digits, ".", "_", "-", "/" (at most 255)';
  const segments = revision.split('/');
  if (segments.some((s) => s === '' || s === '.' || s === '..')) return 'must not have empty, "." or ".." segments';
  return undefined;
}

function looksLikePath(text: string): boolean {
  return text.includes('/') || text.includes('\\') || text.startsWith('.') || text.startsWith('~') || isAbsolute(text);
}

export function parseModelRef(text: string): ModelRef {
  if (text.length === 0) throw new InvalidModelRefError('empty model reference');
  if (CONTROL.test(text)) throw new InvalidModelRefError(`model reference ${JSON.stringify(text)} contains control characters`);
  if (text.startsWith('hf:')) return parseHubRef(text);
  if (looksLikePath(text)) return { kind: 'path', path: text };
  const problem = validateId(text);
  if (problem) throw new InvalidModelRefError(`model id "${text}" ${problem}`);
  return { kind: 'id', id: text };
}

function parseHubRef(text: string): ModelRef {
  const body = text.slice(3);
  const at = body.indexOf('@');
  const repo = at < 0 ? body : body.slice(0, at);
  const revision = at < 0 ? DEFAULT_REVISION : body.slice(at + 1);
  const repoProblem = validateRepoId(repo);
  if (repoProblem) throw new InvalidModelRefError(`"${text}": repo id ${repoProblem} (write hf:org/repo[@revision])`);
  const revProblem = validateRevision(revision);
  if (revProblem) throw new InvalidModelRefError(`"${text}": revision ${revProblem}`);
  return { kind: 'hf', repo, revision };
}

/** The text that parses back to the same reference (used in messages and `models pull` hints). */
export function formatModelRef(ref: ModelRef): string {
  switch (ref.kind) {
    case 'id':
      return ref.id;
    case 'hf':
      return ref.revision === DEFAULT_REVISION ? `hf:${ref.repo}` : `hf:${ref.repo}@${ref.revision}`;
    case 'path':
      return ref.path;
  }
}
