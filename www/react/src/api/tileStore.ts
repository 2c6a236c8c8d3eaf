/**
 * A typed client for tile-store (README "HTTP API"): is a pyramid committed, which tiles are stored,
 * batch uploads and the commit. Works in the page and in workers (fetch only, no DOM).
 *
 * Network errors, 5xx and 429 are retried with exponential backoff and jitter; other 4xx are not,
 * since sending the same request again cannot change the answer.
 */

import type { Geometry, Options } from '@tessera/tiler-wasm';

/** Where the store is and how to authenticate to it. */
export interface StoreSettings {
  /** Base URL of tile-store (its API is under `{url}/pyramids/`); relative URLs are resolved by the caller. */
  url: string;
  /** Bearer token (a static token or the user's JWT) for writes, and reads when the store requires it. */
  token?: string | null;
}

export type StoreFailureCode =
  | 'store_unreachable' // no HTTP answer (network, CORS, timeout)
  | 'store_unauthorized' // 401 / 403
  | 'store_too_large' // 413
  | 'store_conflict' // 409 other than missing tiles (e.g. committed with a different manifest)
  | 'store_http' // any other HTTP error
  | 'store_protocol'; // an answer that is not what the API documents

/** Every failure of a store call; `code` is stable, `message` is for people. */
export interface StoreFailure {
  code: StoreFailureCode;
  message: string;
  /** The HTTP status, when there was an answer. */
  status?: number;
}

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  /** Delay before the first retry; doubled for each one after. */
  baseMs: number;
  /** Largest delay between attempts. */
  capMs: number;
  /** Each attempt is abandoned after this long. */
  timeoutMs: number;
}

/** Uploads outlive a store restart: about two minutes of retries before giving up. */
export const UPLOAD_RETRY: RetryPolicy = { attempts: 14, baseMs: 250, capMs: 10_000, timeoutMs: 60_000 };
/** The reuse check is on the way to the first view: one quick attempt, then tile in the browser. */
export const CHECK_ONCE: RetryPolicy = { attempts: 1, baseMs: 0, capMs: 0, timeoutMs: 5_000 };

/**
 * One batch upload body, framed by `@tessera/tiler-wasm`'s `BatchEncoder` (the batch format is
 * defined once, in Rust), with its content type and its number of tiles.
 */
export interface EncodedBatch {
  body: Uint8Array;
  contentType: string;
  count: number;
}

/** The geometry every uploaded tile is checked against (tile-store's optional upload query). */
export interface UploadGeometry {
  width: number;
  height: number;
  tileSize: number;
  overlap: number;
  format: string;
}

export type CommitResult =
  | { kind: 'committed'; created: boolean }
  /** 409 `missing_tiles`: `tiles` are the first (up to 1000) missing, as `level/col_row.ext`. */
  | { kind: 'missing'; count: number; tiles: string[] };

/** A server-side tiling job (`POST /pyramids`, `GET /jobs/{job}`), as far as the page needs it. */
export interface ServerJob {
  /** The pyramid id; null until the server has read the source. */
  id: string | null;
  /** `fetching`, `queued`, `tiling`, `storing`, `ready` or `failed`. */
  status: string;
  /** The job to poll; null when the pyramid was already committed (`200`). */
  job: string | null;
  /** Why a `failed` job failed: the core's code and message. */
  error: { code: string; message: string } | null;
}

/** How often a server job is asked about. */
const JOB_POLL_MS = 500;

function serverJob(body: unknown): ServerJob {
  const b = body as { id?: unknown; status?: unknown; job?: unknown; error?: { code?: unknown; message?: unknown } | null };
  const id = typeof b?.id === 'string' && isPyramidId(b.id) ? b.id : null;
  if (typeof b?.status !== 'string' || (b.status === 'ready' && id === null))
    throw protocol('a tiling job answer without its status or id');
  const error =
    b.error && typeof b.error.code === 'string' && typeof b.error.message === 'string'
      ? { code: b.error.code, message: b.error.message }
      : null;
  return { id, status: b.status, job: typeof b.job === 'string' ? b.job : null, error };
}

export interface TileListing {
  committed: boolean;
  /** Stored tiles as `level/col_row.ext`. */
  tiles: string[];
}

/**
 * The header of an anonymous upload session: tile-store hands one out on the first write without a
 * token, and stages that writer's tiles apart until its commit; the client sends it back on every
 * later listing, batch and commit of the same upload.
 */
export const SESSION_HEADER = 'Tessera-Upload-Session';

/** Called before each retry, with the reason and the wait. */
export type RetryListener = (reason: StoreFailure, delayMs: number, attempt: number) => void;

/** Whether `value` looks like a pyramid id (64 lowercase hex characters). */
export function isPyramidId(value: string): boolean {
  return /^[0-9a-f]{64}$/.test(value);
}

/** The delay before retry number `attempt` (1-based): exponential, capped, with ±50 % jitter. */
export function backoffDelay(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const exponential = Math.min(policy.capMs, policy.baseMs * 2 ** (attempt - 1));
  // Jitter spreads many clients retrying against one recovering store.
  return Math.round(exponential * (0.5 + random()));
}

function retryable(f: StoreFailure): boolean {
  return f.code === 'store_unreachable' || (f.status !== undefined && (f.status >= 500 || f.status === 429));
}

function isStoreFailure(e: unknown): e is StoreFailure {
  return typeof e === 'object' && e !== null && 'code' in e && 'message' in e && String((e as StoreFailure).code).startsWith('store_');
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class TileStoreClient {
  readonly base: string;
  /** The upload session tile-store handed this client (anonymous writes only); null until then. */
  session: string | null = null;

  constructor(
    readonly settings: StoreSettings,
    private readonly onRetry?: RetryListener,
  ) {
    this.base = settings.url.replace(/\/+$/, '');
  }

  /** The manifest URL stock OpenSeadragon opens. */
  manifestUrl(id: string): string {
    return `${this.base}/pyramids/${id}.dzi`;
  }

  /** The folder of the tiles, as OpenSeadragon's DZI source wants it (with the trailing slash). */
  tilesUrl(id: string): string {
    return `${this.base}/pyramids/${id}_files/`;
  }

  /**
   * Every tile of levels `from..=to` of a committed pyramid in one response (`multipart/form-data`,
   * a part per tile named by its path under `tilesUrl`; the browser parses it with `Response.formData()`).
   */
  levelsUrl(id: string, from: number, to: number): string {
    return `${this.base}/pyramids/${id}/levels?from=${from}&to=${to}`;
  }

  /** Headers a read of this store needs (the token, if any). */
  readHeaders(): Record<string, string> {
    return this.settings.token ? { Authorization: `Bearer ${this.settings.token}` } : {};
  }

  /** The committed manifest of `id`, or null when the store has not committed it (404). */
  async manifest(id: string, policy: RetryPolicy = CHECK_ONCE): Promise<string | null> {
    const response = await this.request(this.manifestUrl(id), { method: 'GET' }, policy, [404]);
    return response.status === 404 ? null : response.text();
  }

  /**
   * The geometry of the committed pyramid `id` — tile-store's `/pyramids/{id}.json`, tiler-wasm's
   * `Geometry` (what `parseDzi` makes of the manifest) — or null when it is not committed (404).
   * The page asks this itself: no XML to parse, so no WebAssembly and no worker.
   */
  async geometry(id: string, policy: RetryPolicy = CHECK_ONCE): Promise<Geometry | null> {
    const response = await this.request(`${this.base}/pyramids/${id}.json`, { method: 'GET' }, policy, [404]);
    return response.status === 404 ? null : ((await readJson(response)) as Geometry);
  }

  /**
   * The committed pyramid of the image whose SHA-256 is `sha256` (lowercase hex), tiled with
   * `options` — tile-store's `GET /pyramids?source=`, which makes the id by tiler-wasm's recipe — or
   * null when there is none (404). A page that hashed the image natively asks this without the tiler.
   */
  async findBySource(
    sha256: string,
    options: Options | undefined,
    policy: RetryPolicy = CHECK_ONCE,
  ): Promise<{ id: string; geometry: Geometry } | null> {
    const q = new URLSearchParams({ source: sha256 });
    if (options?.format) q.set('format', options.format);
    if (options?.quality !== undefined) q.set('quality', String(options.quality));
    if (options?.tileSize !== undefined) q.set('tileSize', String(options.tileSize));
    if (options?.overlap !== undefined) q.set('overlap', String(options.overlap));
    const response = await this.request(`${this.base}/pyramids?${q}`, { method: 'GET' }, policy, [404]);
    if (response.status === 404) return null;
    const body = (await readJson(response)) as { id?: unknown; geometry?: unknown };
    if (typeof body.id !== 'string' || typeof body.geometry !== 'object' || body.geometry === null) {
      throw protocol(`the store's answer for source ${sha256} is not { id, geometry }`);
    }
    return { id: body.id, geometry: body.geometry as Geometry };
  }

  /** What the store holds of `id`: to resume an upload with only the missing tiles. */
  async listTiles(id: string, policy: RetryPolicy = UPLOAD_RETRY): Promise<TileListing> {
    const response = await this.request(`${this.base}/pyramids/${id}/tiles`, { method: 'GET' }, policy);
    const body = (await readJson(response)) as Partial<TileListing>;
    if (typeof body.committed !== 'boolean' || !Array.isArray(body.tiles)) {
      throw protocol(`the tile listing of ${id} is not { committed, tiles }`);
    }
    return { committed: body.committed, tiles: body.tiles.map(String) };
  }

  /** Stores one encoded batch of tiles; resolves to the number stored. */
  async uploadBatch(id: string, batch: EncodedBatch, geometry: UploadGeometry, policy: RetryPolicy = UPLOAD_RETRY): Promise<number> {
    const q = new URLSearchParams({
      width: String(geometry.width),
      height: String(geometry.height),
      tileSize: String(geometry.tileSize),
      overlap: String(geometry.overlap),
      format: geometry.format,
    });
    const response = await this.request(
      `${this.base}/pyramids/${id}/tiles?${q}`,
      { method: 'POST', body: batch.body as Uint8Array<ArrayBuffer>, headers: { 'Content-Type': batch.contentType } },
      policy,
    );
    const answer = (await readJson(response)) as { stored?: unknown };
    if (typeof answer.stored !== 'number') throw protocol('a batch upload answered without `stored`');
    return answer.stored;
  }

  /** Commits `id` with its manifest; a 409 listing missing tiles is a result, not an error. */
  async commit(id: string, dziXml: string, policy: RetryPolicy = UPLOAD_RETRY): Promise<CommitResult> {
    const response = await this.request(
      this.manifestUrl(id),
      { method: 'PUT', body: dziXml, headers: { 'Content-Type': 'application/xml' } },
      policy,
      [409],
    );
    const body = (await readJson(response)) as {
      created?: unknown;
      error?: { code?: string; message?: string; missing?: { count?: number; tiles?: unknown[] } };
    };
    if (response.status !== 409) return { kind: 'committed', created: body.created === true };
    const missing = body.error?.missing;
    if (body.error?.code === 'missing_tiles' && missing && typeof missing.count === 'number' && Array.isArray(missing.tiles)) {
      return { kind: 'missing', count: missing.count, tiles: missing.tiles.map(String) };
    }
    throw {
      code: 'store_conflict',
      status: 409,
      message: body.error?.message ?? 'the store refused the commit (409)',
    } satisfies StoreFailure;
  }

  /** Asks tile-store to fetch `src` (an absolute http(s) URL it may reach) and tile it itself (`POST /pyramids`). */
  async tileOnServer(src: string, policy: RetryPolicy = UPLOAD_RETRY): Promise<ServerJob> {
    const response = await this.request(
      `${this.base}/pyramids`,
      { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ src }) },
      policy,
    );
    return serverJob(await readJson(response));
  }

  /** Polls a job from `tileOnServer` until it is `ready` or `failed`; `signal` stops waiting. */
  async finishedJob(job: ServerJob, signal?: AbortSignal, policy: RetryPolicy = UPLOAD_RETRY): Promise<ServerJob> {
    let current = job;
    while (current.status !== 'ready' && current.status !== 'failed') {
      if (!current.job) throw protocol('an unfinished tiling job without its job id');
      await sleep(JOB_POLL_MS);
      signal?.throwIfAborted();
      const response = await this.request(`${this.base}/jobs/${encodeURIComponent(current.job)}`, { method: 'GET' }, policy);
      current = { ...serverJob(await readJson(response)), job: current.job };
    }
    return current;
  }

  /**
   * One request with retries. Statuses in `accept` (besides 2xx) are answers for the caller;
   * anything else becomes a StoreFailure, retried when it may pass on its own.
   */
  private async request(url: string, init: RequestInit, policy: RetryPolicy, accept: number[] = []): Promise<Response> {
    for (let attempt = 1; ; attempt++) {
      let failure: StoreFailure;
      try {
        const response = await this.attempt(url, init, policy.timeoutMs);
        if (response.ok || accept.includes(response.status)) return response;
        failure = await httpFailure(url, response);
      } catch (e) {
        if (!isStoreFailure(e)) throw e;
        failure = e;
      }
      if (!retryable(failure) || attempt >= policy.attempts) throw failure;
      const delay = backoffDelay(policy, attempt);
      this.onRetry?.(failure, delay, attempt);
      await sleep(delay);
    }
  }

  private async attempt(url: string, init: RequestInit, timeoutMs: number): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.settings.token) headers.set('Authorization', `Bearer ${this.settings.token}`);
    if (this.session) headers.set(SESSION_HEADER, this.session);
    try {
      const response = await fetch(url, { ...init, headers, mode: 'cors', credentials: 'omit', signal: AbortSignal.timeout(timeoutMs) });
      const session = response.headers.get(SESSION_HEADER);
      if (session && /^[0-9a-f]{32}$/.test(session)) this.session = session;
      return response;
    } catch (e) {
      const timedOut = e instanceof DOMException && e.name === 'TimeoutError';
      throw {
        code: 'store_unreachable',
        message: timedOut
          ? `tile-store at ${this.base} did not answer within ${Math.round(timeoutMs / 1000)} s`
          : `cannot reach tile-store at ${this.base} (down, unreachable, or not allowing this site by CORS)`,
      } satisfies StoreFailure;
    }
  }
}

function protocol(message: string): StoreFailure {
  return { code: 'store_protocol', message: `tile-store: ${message}` };
}

async function readJson(response: Response): Promise<unknown> {
  try {
    return await response.json();
  } catch {
    throw protocol(`${response.url} answered ${response.status} without JSON`);
  }
}

/** tile-store's JSON error (`{ error: { code, message } }`) as a StoreFailure. */
async function httpFailure(url: string, response: Response): Promise<StoreFailure> {
  let detail = `${response.status} ${response.statusText}`.trim();
  try {
    const body = (await response.json()) as { error?: { message?: string } };
    if (body.error?.message) detail = `${response.status}: ${body.error.message}`;
  } catch {
    // Not tile-store's JSON (a proxy's page, say): the status says enough.
  }
  const status = response.status;
  const code: StoreFailureCode =
    status === 401 || status === 403
      ? 'store_unauthorized'
      : status === 413
        ? 'store_too_large'
        : status === 409
          ? 'store_conflict'
          : 'store_http';
  const hint = code === 'store_unauthorized' ? ' (the store needs a valid bearer token for writes)' : '';
  return { code, status, message: `tile-store ${new URL(url).pathname}: ${detail}${hint}` };
}
