import { CacheError } from './errors.js';
import { readJsonFile, writeJsonAtomic } from './json-file.js';
import { unsafeRepoPathReason } from './safe-path.js';

/** A file as the Hub lists it: LFS files carry sha256, small git files only their git blob id. */
export interface RemoteFile {
  path: string;
  size: number;
  sha256?: string;
  gitOid?: string;
}

/** A file on disk whose bytes were hashed after download and matched the expected checksum. */
export interface VerifiedFile {
  path: string;
  size: number;
  sha256: string;
  gitOid: string;
}

export interface Manifest {
  version: 1;
  repo: string;
  revision: string;
  /** The commit the revision pointed at when last pulled (downloads use it, so files agree). */
  commit?: string;
  endpoint: string;
  /** The repo's files at that commit (safe names only), kept so offline runs know what a task needs. */
  listing: RemoteFile[];
  files: VerifiedFile[];
  updated: string;
}

const HEX = (n: number): RegExp => new RegExp(`^[0-9a-f]{${n}}$`);

function isRemoteFile(value: unknown): value is RemoteFile {
  const f = value as RemoteFile;
  return (
    typeof f === 'object' && f !== null &&
    typeof f.path === 'string' && unsafeRepoPathReason(f.path) === undefined &&
    Number.isSafeInteger(f.size) && f.size >= 0 &&
    (f.sha256 === undefined || HEX(64).test(f.sha256)) &&
    (f.gitOid === undefined || HEX(40).test(f.gitOid))
  );
}

function isVerifiedFile(value: unknown): value is VerifiedFile {
  const f = value as VerifiedFile;
  return isRemoteFile(value) && typeof f.sha256 === 'string' && typeof f.gitOid === 'string';
}

/** The manifest at `path`, undefined if there is none; a tampered or damaged one is an error. */
export async function readManifest(path: string): Promise<Manifest | undefined> {
  const raw = await readJsonFile(path);
  if (raw === undefined) return undefined;
  const m = raw as Manifest;
  const ok =
    typeof m === 'object' && m !== null && m.version === 1 &&
    typeof m.repo === 'string' && typeof m.revision === 'string' && typeof m.endpoint === 'string' &&
    (m.commit === undefined || typeof m.commit === 'string') &&
    Array.isArray(m.listing) && m.listing.every(isRemoteFile) &&
    Array.isArray(m.files) && m.files.every(isVerifiedFile);
  if (!ok) throw new CacheError(`${path} is damaged; delete the model with \`diffuse models rm\` and pull it again`);
  return m;
}

export async function writeManifest(path: string, manifest: Manifest): Promise<void> {
  await writeJsonAtomic(path, { ...manifest, updated: new Date().toISOString() });
}

/** files with `file` added or replacing the record of the same path. */
export function withFile(files: readonly VerifiedFile[], file: VerifiedFile): VerifiedFile[] {
  return [...files.filter((f) => f.path !== file.path), file].sort((a, b) => a.path.localeCompare(b.path));
}

/** Whether a verified record is the file the listing describes now. */
export function matchesRemote(have: VerifiedFile, want: RemoteFile, pin?: string): boolean {
  if (have.path !== want.path || have.size !== want.size) return false;
  if (pin) return have.sha256 === pin;
  if (want.sha256) return have.sha256 === want.sha256;
  return want.gitOid !== undefined && have.gitOid === want.gitOid;
}
