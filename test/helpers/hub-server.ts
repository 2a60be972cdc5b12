import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PullOptions } from '../../src/models/pull.js';
import { validateRegistry, type Registry } from '../../src/models/registry.js';

/**
 * A stand-in for the Hugging Face Hub on 127.0.0.1, speaking the same URL layout and headers as
 * huggingface.co (see src/models/hub.ts), with a second server on another port playing the CDN
 * that LFS downloads are redirected to. It serves repos made of in-memory files: random bytes
 * written to a temp folder by a test, or a real folder such as test/fixtures/tiny-sd/.
 *
 *   GET /api/models/{org}/{name}/revision/{rev}        listing: sha + siblings (size, blobId, lfs.sha256)
 *   GET /{org}/{name}/resolve/{rev}/{path}             small files: 200 (Range honoured)
 *                                                      LFS files: 302 to {cdn}/cdn/{sha256} with
 *                                                      X-Repo-Commit, X-Linked-Etag, X-Linked-Size
 *   GET {cdn}/cdn/{sha256}                             the bytes, 200 or 206 for Range
 *
 * Faults per repo path: cut the connection (or fall silent) after N bytes for the first `times`
 * requests, flip one byte, ignore Range, send extra bytes. Every request is logged for assertions.
 */

export interface FakeFile {
  /** Any string: hostile names included, exactly as the listing will show them. */
  path: string;
  data: Buffer;
  lfs: boolean;
}

export interface FakeRepo {
  /** org/name */
  id: string;
  /** Branch name → files; each branch gets a fixed fake commit id. */
  revisions: Record<string, FakeFile[]>;
  /** Files need a valid token (401/403 GatedRepo), the listing does not, as on the Hub. */
  gated?: boolean;
}

export interface Fault {
  /** Destroy the connection after this many body bytes... */
  cutAfter?: number;
  /** ...for this many requests (default 1). */
  times?: number;
  /** At cutAfter, fall silent and keep the connection open instead of closing it. */
  stall?: boolean;
  /** Flip this byte on every serving. */
  corruptByte?: number;
  /** Answer Range requests with the whole file (200). */
  ignoreRange?: boolean;
  /** Send this many bytes beyond the real content. */
  extraBytes?: number;
}

export interface LoggedRequest {
  server: 'hub' | 'cdn';
  method: string;
  url: string;
  authorization?: string;
  range?: string;
  status: number;
  /** The repo path a resolve/CDN request served, when known. */
  path?: string;
}

export interface HubServer {
  endpoint: string;
  cdnOrigin: string;
  requests: LoggedRequest[];
  addRepo(repo: FakeRepo): void;
  setFault(path: string, fault: Fault): void;
  commitOf(repo: string, revision: string): string;
  close(): Promise<void>;
}

export interface HubServerOptions {
  /** The token gated files accept. */
  token?: string;
  /** Bytes per write and pause between writes: makes transfers slow enough to overlap or abort. */
  chunkBytes?: number;
  chunkDelayMs?: number;
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
const gitOid = (data: Buffer): string => createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
const lfsPointer = (data: Buffer): Buffer =>
  Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(data)}\nsize ${data.length}\n`);

function fakeCommit(repo: string, revision: string): string {
  return createHash('sha1').update(`${repo}@${revision}`).digest('hex');
}

/** Parses "bytes=a-" / "bytes=a-b" against a length; undefined when there is no usable Range. */
function parseRange(header: string | undefined, length: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  const match = /^bytes=(\d+)-(\d*)$/.exec(header ?? '');
  if (!match) return undefined;
  const start = Number(match[1]);
  const end = match[2] ? Math.min(Number(match[2]), length - 1) : length - 1;
  if (start >= length || start > end) return 'unsatisfiable';
  return { start, end };
}

export async function startHubServer(options: HubServerOptions = {}): Promise<HubServer> {
  const repos = new Map<string, FakeRepo>();
  const faults = new Map<string, Fault & { served: number }>();
  const byHash = new Map<string, FakeFile>();
  const requests: LoggedRequest[] = [];
  const chunkBytes = options.chunkBytes ?? 64 * 1024;
  const sockets = new Set<import('node:net').Socket>();

  const log = (server: 'hub' | 'cdn', req: IncomingMessage, status: number, path?: string): void => {
    const entry: LoggedRequest = { server, method: req.method ?? 'GET', url: req.url ?? '', status };
    if (req.headers.authorization) entry.authorization = req.headers.authorization;
    if (req.headers.range) entry.range = req.headers.range;
    if (path !== undefined) entry.path = path;
    requests.push(entry);
  };

  const fail = (server: 'hub' | 'cdn', req: IncomingMessage, res: ServerResponse, status: number, code?: string): void => {
    log(server, req, status);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (code) {
      headers['x-error-code'] = code;
      headers['x-error-message'] = code;
    }
    res.writeHead(status, headers).end(JSON.stringify({ error: code ?? `HTTP ${status}` }));
  };

  /** Body with faults applied, written in slow chunks; a cut destroys the socket mid-body. */
  const sendBody = async (res: ServerResponse, file: FakeFile, start: number, end: number, fault: Fault | undefined, cut: boolean): Promise<void> => {
    let body = file.data.subarray(start, end + 1);
    if (fault?.corruptByte !== undefined && fault.corruptByte >= start && fault.corruptByte <= end) {
      body = Buffer.from(body);
      body[fault.corruptByte - start]! ^= 0xff;
    }
    if (fault?.extraBytes) body = Buffer.concat([body, randomBytes(fault.extraBytes)]);
    const limit = cut && fault?.cutAfter !== undefined ? Math.min(fault.cutAfter, body.length) : body.length;
    for (let sent = 0; sent < limit; ) {
      const next = Math.min(limit, sent + chunkBytes);
      await new Promise<void>((resolve) => res.write(body.subarray(sent, next), () => resolve()));
      sent = next;
      if (options.chunkDelayMs) await sleep(options.chunkDelayMs);
      if (res.destroyed) return;
    }
    if (limit < body.length) {
      if (!fault?.stall) res.socket?.destroy();
      return;
    }
    res.end();
  };

  /** Serves bytes (with Range) for the resolve endpoint (small files) and the CDN (LFS files). */
  const serveFile = async (server: 'hub' | 'cdn', req: IncomingMessage, res: ServerResponse, file: FakeFile, headers: Record<string, string>): Promise<void> => {
    const fault = faults.get(file.path);
    const cut = fault !== undefined && fault.cutAfter !== undefined && fault.served < (fault.times ?? 1);
    if (fault) fault.served++;
    const size = file.data.length;
    const range = fault?.ignoreRange ? undefined : parseRange(req.headers.range, size);
    if (range === 'unsatisfiable') {
      log(server, req, 416, file.path);
      res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
      return;
    }
    const start = range?.start ?? 0;
    const end = range?.end ?? size - 1;
    const status = range ? 206 : 200;
    log(server, req, status, file.path);
    const length = end - start + 1 + (fault?.extraBytes ?? 0);
    res.writeHead(status, {
      ...headers,
      'accept-ranges': 'bytes',
      'content-type': 'application/octet-stream',
      'content-length': String(length),
      ...(range ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}),
    });
    await sendBody(res, file, start, end, fault, cut);
  };

  const findRevision = (repo: FakeRepo, revision: string): FakeFile[] | undefined => {
    for (const [branch, files] of Object.entries(repo.revisions)) {
      if (branch === revision || fakeCommit(repo.id, branch) === revision) return files;
    }
    return undefined;
  };

  const revisionName = (repo: FakeRepo, revision: string): string =>
    Object.keys(repo.revisions).find((b) => b === revision || fakeCommit(repo.id, b) === revision) ?? revision;

  const authorised = (req: IncomingMessage): boolean => options.token !== undefined && req.headers.authorization === `Bearer ${options.token}`;

  const hub = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://hub');
      const parts = url.pathname.split('/').slice(1).map(decodeURIComponent);
      if (parts[0] === 'api' && parts[1] === 'models' && parts[4] === 'revision' && parts.length === 6) {
        const repo = repos.get(`${parts[2]}/${parts[3]}`);
        if (!repo) return fail('hub', req, res, req.headers.authorization ? 404 : 401, 'RepoNotFound');
        const files = findRevision(repo, parts[5]!);
        if (!files) return fail('hub', req, res, 404, 'RevisionNotFound');
        log('hub', req, 200);
        const siblings = files.map((f) => ({
          rfilename: f.path,
          size: f.data.length,
          blobId: f.lfs ? gitOid(lfsPointer(f.data)) : gitOid(f.data),
          ...(f.lfs ? { lfs: { sha256: sha256(f.data), size: f.data.length, pointerSize: lfsPointer(f.data).length } } : {}),
        }));
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ id: repo.id, sha: fakeCommit(repo.id, revisionName(repo, parts[5]!)), siblings }));
        return;
      }
      if (parts[2] === 'resolve' && parts.length >= 5) {
        const repo = repos.get(`${parts[0]}/${parts[1]}`);
        if (!repo) return fail('hub', req, res, req.headers.authorization ? 404 : 401, 'RepoNotFound');
        const files = findRevision(repo, parts[3]!);
        if (!files) return fail('hub', req, res, 404, 'RevisionNotFound');
        if (repo.gated && !authorised(req)) return fail('hub', req, res, req.headers.authorization ? 403 : 401, 'GatedRepo');
        const path = parts.slice(4).join('/');
        const file = files.find((f) => f.path === path);
        if (!file) return fail('hub', req, res, 404, 'EntryNotFound');
        const commit = fakeCommit(repo.id, revisionName(repo, parts[3]!));
        if (file.lfs) {
          const hash = sha256(file.data);
          byHash.set(hash, file);
          log('hub', req, 302, file.path);
          res.writeHead(302, {
            location: `${cdnOrigin}/cdn/${hash}?expires=presigned`,
            'x-repo-commit': commit,
            'x-linked-etag': `"${hash}"`,
            'x-linked-size': String(file.data.length),
            etag: `"${hash}"`,
          });
          res.end();
          return;
        }
        await serveFile('hub', req, res, file, { 'x-repo-commit': commit, etag: `"${gitOid(file.data)}"` });
        return;
      }
      fail('hub', req, res, 404);
    })().catch(() => res.destroy());
  });

  const cdn = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://cdn');
      const match = /^\/cdn\/([0-9a-f]{64})$/.exec(url.pathname);
      const file = match ? byHash.get(match[1]!) : undefined;
      if (!file) return fail('cdn', req, res, 404);
      await serveFile('cdn', req, res, file, { etag: `"${match![1]}"` });
    })().catch(() => res.destroy());
  });

  for (const server of [hub, cdn]) server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const listen = (server: Server): Promise<string> =>
    new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
  const endpoint = await listen(hub);
  const cdnOrigin = await listen(cdn);

  return {
    endpoint,
    cdnOrigin,
    requests,
    addRepo(repo) {
      repos.set(repo.id, repo);
    },
    setFault(path, fault) {
      faults.set(path, { ...fault, served: 0 });
    },
    commitOf: fakeCommit,
    async close() {
      for (const s of sockets) s.destroy();
      await Promise.all([hub, cdn].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    },
  };
}

// Big binary kinds live in LFS on the Hub; configs and tokenizer files are plain git blobs.
const LFS_NAME = /\.(onnx|onnx_data|onnx\.data|pb|bin|safetensors|ckpt)$/;

/** Every file under dir as a repo (forward-slash paths), LFS decided by kind as on the Hub. */
export async function repoFromFolder(dir: string): Promise<FakeFile[]> {
  const files: FakeFile[] = [];
  const walk = async (sub: string, depth: number): Promise<void> => {
    if (depth > 16) return;
    for (const entry of await readdir(join(dir, sub), { withFileTypes: true })) {
      const rel = sub ? `${sub}/${entry.name}` : entry.name;
      if (entry.isDirectory()) await walk(rel, depth + 1);
      else if (entry.isFile()) files.push({ path: rel, data: await readFile(join(dir, rel)), lfs: LFS_NAME.test(entry.name) });
    }
  };
  await walk('', 0);
  return files.sort((a, b) => a.path.localeCompare(b.path));
}

/**
 * Writes a small diffusers-shaped repo of random bytes into dir: model_index.json, a scheduler
 * config and tokenizer text (plain git files), and ONNX-named binaries of the given sizes.
 */
export async function writeRandomRepo(dir: string, binaries: Record<string, number>): Promise<void> {
  const texts: Record<string, string> = {
    'model_index.json': JSON.stringify({ _class_name: 'OnnxStableDiffusionPipeline' }),
    'scheduler/scheduler_config.json': JSON.stringify({ _class_name: 'PNDMScheduler', nonce: randomBytes(4).toString('hex') }),
    'tokenizer/vocab.json': JSON.stringify({ a: 0, b: 1 }),
    'tokenizer/merges.txt': '#version: 0.2\na b\n',
    'unet/config.json': JSON.stringify({ sample_size: 8 }),
  };
  for (const [path, text] of Object.entries(texts)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), text);
  }
  for (const [path, size] of Object.entries(binaries)) {
    await mkdir(dirname(join(dir, path)), { recursive: true });
    await writeFile(join(dir, path), randomBytes(size));
  }
}

/** A fresh temp folder (the caller removes it). */
export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `diffuse-${prefix}-`));
}

/** Every file and folder under dir, as paths relative to it (symlinks not followed). */
export async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (sub: string, depth: number): Promise<void> => {
    if (depth > 32) return;
    for (const entry of await readdir(join(dir, sub), { withFileTypes: true })) {
      const rel = sub ? `${sub}/${entry.name}` : entry.name;
      out.push(rel);
      if (entry.isDirectory()) await walk(rel, depth + 1);
    }
  };
  await walk('', 0);
  return out.sort();
}

export interface TestModel {
  id: string;
  repo: string;
  revision?: string;
  sha256?: Record<string, string>;
}

/**
 * Raw registry JSON for fake repos, sharing models.json's include patterns and task table, for
 * tests to pass through validateRegistry().
 */
export async function registryJsonFor(models: TestModel[]): Promise<unknown> {
  const real = JSON.parse(await readFile(new URL('../../../models.json', import.meta.url), 'utf8')) as Record<string, unknown>;
  return {
    version: 1,
    default: models[0]!.id,
    defaultReason: 'test',
    include: real.include,
    taskComponents: real.taskComponents,
    safetyComponents: real.safetyComponents,
    models: models.map((m) => ({
      id: m.id,
      name: m.id,
      family: 'sd1',
      repo: m.repo,
      revision: m.revision ?? 'main',
      tasks: ['txt2img', 'img2img', 'inpaint'],
      precision: 'fp32',
      prediction: 'epsilon',
      resolution: [64, 64],
      recommended: { sampler: 'euler', schedule: 'normal', steps: 2, cfg: 7.5 },
      license: { name: 'MIT', url: 'https://example.com/license' },
      componentBytes: { text_encoder: 1, tokenizer: 1, unet: 1, vae_decoder: 1, vae_encoder: 1, scheduler: 1 },
      ...(m.sha256 ? { sha256: m.sha256 } : {}),
    })),
  };
}

/** A fake Hub serving one repo of random files, and a fresh cache home to pull it into. */
export interface FakeHub {
  tmp: string;
  /** The repo's files on disk (what the server serves). */
  src: string;
  home: string;
  server: HubServer;
  registry: Registry;
  /** Pull/resolve options pointing at this home, registry and server, with fast retries and lock polling. */
  base: PullOptions;
  done(): Promise<void>;
}

export async function fakeHub(options: {
  repo: string;
  files: Record<string, number>;
  server?: HubServerOptions;
  /** More repos or faults, before the registry is built. */
  extra?: (server: HubServer, src: string) => Promise<void>;
}): Promise<FakeHub> {
  const tmp = await tempDir('hub');
  const home = join(tmp, 'home');
  const src = join(tmp, 'src');
  await writeRandomRepo(src, options.files);
  const server = await startHubServer(options.server);
  server.addRepo({ id: options.repo, revisions: { main: await repoFromFolder(src) } });
  await options.extra?.(server, src);
  const registry = validateRegistry(await registryJsonFor([{ id: 'tiny', repo: options.repo }]), 'test registry');
  return {
    tmp,
    src,
    home,
    server,
    registry,
    base: { home, registry, hub: { endpoint: server.endpoint }, retryDelayMs: 1, lock: { pollMs: 10 } },
    async done() {
      await server.close();
      await rm(tmp, { recursive: true, force: true });
    },
  };
}

/** The error a promise rejects with (fails the test if it resolves). */
export async function rejects(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}
