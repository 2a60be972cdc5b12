import { linkSignals } from './abort.js';
import { HubAuthError, HubError, HubNotFoundError } from './errors.js';
import type { RemoteFile } from './manifest.js';

/**
 * A small Hugging Face Hub client, URL for URL what huggingface_hub does:
 *   listing   GET {endpoint}/api/models/{repo}/revision/{rev}?blobs=true
 *             → { sha: commit, siblings: [{ rfilename, size, blobId, lfs?: { sha256, size } }] }
 *   download  GET {endpoint}/{repo}/resolve/{rev}/{path}
 *             → 200 for small git files, or 302 to a CDN for LFS files (X-Linked-Etag = sha256,
 *               X-Linked-Size, X-Repo-Commit on the redirect itself)
 * The revision is percent-encoded as one segment (refs/pr/1 → refs%2Fpr%2F1), the path per segment.
 * Errors carry X-Error-Code (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo).
 * Redirects are followed by hand so the token never leaves the Hub's origin.
 */

export interface HubOptions {
  /** Without trailing slash. */
  endpoint: string;
  token?: string;
  userAgent?: string;
}

export const DEFAULT_ENDPOINT = 'https://huggingface.co';
const MAX_REDIRECTS = 5;

/** HF_ENDPOINT and HF_TOKEN (or the older HUGGING_FACE_HUB_TOKEN), as huggingface_hub reads them. */
export function hubOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): HubOptions {
  const endpoint = (env.HF_ENDPOINT || DEFAULT_ENDPOINT).replace(/\/+$/, '');
  let parsed: URL;
  try {
    parsed = new URL(endpoint);
  } catch {
    throw new HubError(`HF_ENDPOINT is not a URL: ${endpoint}`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new HubError(`HF_ENDPOINT must be http(s): ${endpoint}`);
  const token = env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN || undefined;
  return token ? { endpoint, token } : { endpoint };
}

function encodePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

export function listingUrl(hub: HubOptions, repo: string, revision: string): string {
  return `${hub.endpoint}/api/models/${encodePath(repo)}/revision/${encodeURIComponent(revision)}?blobs=true`;
}

export function resolveUrl(hub: HubOptions, repo: string, revision: string, path: string): string {
  return `${hub.endpoint}/${encodePath(repo)}/resolve/${encodeURIComponent(revision)}/${encodePath(path)}`;
}

export interface HubRequest {
  /** For messages: "listing org/repo@rev", "downloading unet/model.onnx". */
  what: string;
  repo: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Longest wait for each response's headers (not its body), in ms. Default 30 s. */
  timeoutMs?: number;
}

function httpError(hub: HubOptions, res: Response, request: HubRequest): HubError {
  const code = res.headers.get('x-error-code') ?? '';
  const status = res.status;
  const page = `${hub.endpoint}/${request.repo}`;
  if (code === 'GatedRepo') {
    return new HubAuthError(
      hub.token
        ? `${request.repo} is gated and HF_TOKEN has no access yet: accept its terms at ${page} with that account`
        : `${request.repo} is gated: accept its terms at ${page}, then set HF_TOKEN to an access token of that account`,
      status,
    );
  }
  if (code === 'RevisionNotFound') return new HubNotFoundError(`${request.what}: no such revision in ${request.repo}`, status);
  if (code === 'EntryNotFound') return new HubNotFoundError(`${request.what}: no such file in ${request.repo}`, status);
  if (code === 'RepoNotFound' || status === 404) {
    return new HubNotFoundError(`${request.what}: repo ${request.repo} not found on ${hub.endpoint}${hub.token ? '' : ' (if it is private, set HF_TOKEN)'}`, status);
  }
  if (status === 401) {
    return new HubAuthError(
      hub.token
        ? `${request.what}: HF_TOKEN was rejected by ${hub.endpoint} (401); check the token`
        : `${request.what}: ${hub.endpoint} asks for authentication (401): the repo is private, gated or missing; set HF_TOKEN`,
      status,
    );
  }
  if (status === 403) return new HubAuthError(`${request.what}: access denied (403); check that HF_TOKEN may read ${request.repo}`, status);
  if (status === 429) return new HubError(`${request.what}: the Hub is rate-limiting requests (429); try again later`, status);
  return new HubError(`${request.what}: ${hub.endpoint} answered HTTP ${status}`, status);
}

/** Failures worth retrying (with Range) rather than reporting at once; disk errors are not. */
export function isTransient(err: unknown): boolean {
  return err instanceof HubError && err.retriable;
}

/**
 * GET with redirects followed by hand (at most five, http/https only). The Authorization header
 * goes only to the endpoint's own origin: CDNs get presigned URLs and must not see the token.
 * Returns the final response when its status is 2xx (or 416, which callers handle); otherwise a
 * typed HubError. The redirect's X-Linked-* headers are returned too.
 */
export async function hubGet(hub: HubOptions, url: string, request: HubRequest): Promise<{ response: Response; linked: Headers | undefined }> {
  const hubOrigin = new URL(hub.endpoint).origin;
  let current = new URL(url);
  let linked: Headers | undefined;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const headers: Record<string, string> = {
      'user-agent': hub.userAgent ?? `diffuse; node/${process.versions.node}`,
      // Sizes and Range offsets are in stored bytes; compression would shift both.
      'accept-encoding': 'identity',
      ...request.headers,
    };
    if (hub.token && current.origin === hubOrigin) headers.authorization = `Bearer ${hub.token}`;
    let response: Response;
    const timeoutMs = request.timeoutMs ?? 30_000;
    // The timeout covers the wait for headers only (cleared below): a large body may take hours.
    // Lives as long as the body: a user abort still reaches it after the headers.
    const attempt = linkSignals(request.signal);
    const timer = setTimeout(() => attempt.abort(new HubError(`${request.what}: no answer from ${current.origin} within ${timeoutMs / 1000} s`, undefined, { retriable: true })), timeoutMs);
    try {
      response = await fetch(current, { headers, redirect: 'manual', signal: attempt.signal });
    } catch (err) {
      attempt.dispose();
      if (request.signal?.aborted) throw request.signal.reason ?? err;
      if (attempt.signal.aborted) throw attempt.signal.reason;
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new HubError(`${request.what}: cannot reach ${current.origin} (${cause?.code ?? cause?.message ?? (err as Error).message})`, undefined, { cause: err, retriable: true });
    } finally {
      clearTimeout(timer);
    }
    if (response.status >= 300 && response.status < 400 && response.headers.has('location')) {
      linked ??= response.headers;
      await response.body?.cancel();
      const next = new URL(response.headers.get('location')!, current);
      if (next.protocol !== 'https:' && next.protocol !== 'http:') {
        throw new HubError(`${request.what}: refusing a redirect to a ${next.protocol} URL`);
      }
      current = next;
      continue;
    }
    if (response.ok || response.status === 416) return { response, linked };
    await response.body?.cancel();
    throw httpError(hub, response, request);
  }
  throw new HubError(`${request.what}: more than ${MAX_REDIRECTS} redirects`);
}

export interface RepoListing {
  repo: string;
  revision: string;
  /** The commit the revision resolved to; downloads name it so every file comes from one commit. */
  commit?: string;
  files: RemoteFile[];
}

const SHA256 = /^[0-9a-f]{64}$/;
const GIT_OID = /^[0-9a-f]{40}$/;

function parseListing(repo: string, revision: string, body: unknown): RepoListing {
  const data = body as { sha?: unknown; siblings?: unknown };
  if (!data || typeof data !== 'object' || !Array.isArray(data.siblings)) {
    throw new HubError(`listing ${repo}@${revision}: the Hub's answer has no file list`);
  }
  const files: RemoteFile[] = [];
  for (const raw of data.siblings as unknown[]) {
    const s = raw as { rfilename?: unknown; size?: unknown; blobId?: unknown; lfs?: { sha256?: unknown; size?: unknown } | null };
    if (typeof s?.rfilename !== 'string') throw new HubError(`listing ${repo}@${revision}: a file entry has no name`);
    const size = s.lfs && typeof s.lfs.size === 'number' ? s.lfs.size : s.size;
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
      throw new HubError(`listing ${repo}@${revision}: ${JSON.stringify(s.rfilename)} has no valid size`);
    }
    const file: RemoteFile = { path: s.rfilename, size };
    if (s.lfs) {
      if (typeof s.lfs.sha256 !== 'string' || !SHA256.test(s.lfs.sha256)) {
        throw new HubError(`listing ${repo}@${revision}: ${JSON.stringify(s.rfilename)} has no valid LFS sha256`);
      }
      file.sha256 = s.lfs.sha256;
    } else if (typeof s.blobId === 'string' && GIT_OID.test(s.blobId)) {
      file.gitOid = s.blobId;
    }
    files.push(file);
  }
  const listing: RepoListing = { repo, revision, files };
  if (typeof data.sha === 'string' && GIT_OID.test(data.sha)) listing.commit = data.sha;
  return listing;
}

export async function listRepoFiles(hub: HubOptions, repo: string, revision: string, signal?: AbortSignal): Promise<RepoListing> {
  const what = `listing ${repo}@${revision}`;
  const { response } = await hubGet(hub, listingUrl(hub, repo, revision), { what, repo, signal, headers: { accept: 'application/json' } });
  let body: unknown;
  const text = await readCapped(response, MAX_LISTING_BYTES, what, signal);
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new HubError(`${what}: the Hub's answer is not JSON`, undefined, { cause: err });
  }
  return parseListing(repo, revision, body);
}

/** A repo listing is a file list: the largest model repos list in well under a megabyte. */
const MAX_LISTING_BYTES = 16 * 2 ** 20;

/** A response body as text, refused once it passes `maxBytes` (a server can send without end). */
async function readCapped(response: Response, maxBytes: number, what: string, signal?: AbortSignal): Promise<string> {
  const refuse = () => new HubError(`${what}: the Hub's answer passes ${maxBytes / 2 ** 20} MB; that is no listing`);
  if (Number(response.headers.get('content-length') ?? 0) > maxBytes) {
    await response.body?.cancel();
    throw refuse();
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for await (const chunk of response.body ?? []) {
      total += (chunk as Uint8Array).length;
      if (total > maxBytes) throw refuse();
      chunks.push(chunk as Uint8Array);
    }
  } catch (err) {
    if (signal?.aborted) throw signal.reason ?? err;
    if (err instanceof HubError) throw err;
    throw new HubError(`${what}: the answer broke off (${(err as Error).message})`, undefined, { cause: err });
  }
  return Buffer.concat(chunks).toString('utf8');
}
