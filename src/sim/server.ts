/**
 * "A network in a box": relay firehose, PLC directory and PDS read endpoints on one port.
 *
 * Owns: the listening socket, subscribers and their cursors, pacing, and when events are generated.
 * Promises:
 * - `subscribeRepos` without a cursor is live (events released from now on); with `cursor=N` every
 *   retained frame after seq N is replayed in order, then it continues live; `N` above the last
 *   released seq gets an error frame `FutureCursor` and the socket is closed; a cursor older than
 *   the retention window gets `#info OutdatedCursor` and starts at the oldest retained frame.
 * - `rate` > 0 releases that many commits (with the events planned around them) per second;
 *   `rate` 0 releases as fast as subscribers read. Either way a subscriber is only written to while
 *   its socket accepts data (`send` backpressure, resumed on `drain`), so nothing buffers without
 *   bound. After `commits` commits the simulator idles with sockets open.
 * - `pregenerate` builds every event before `startSimulator` resolves, so a benchmark measures the
 *   consumer, not the generator (paced, the pacing starts once everything is generated, and every
 *   frame is kept: `retain` is refused); otherwise events are generated just ahead of demand.
 * - Output depends only on the options (seed included), never on timing or on who is connected
 *   (the export's creation times excepted: they follow the wall clock).
 * - DID documents name `pdsUrl` as the PDS (default: this server, which holds the repos).
 * - The PLC directory's `/export` lists every account as registered before the simulation, in
 *   index order; paced, an account is listed only from REGISTRATION_LEAD_MS before its first commit
 *   is due, as a PDS registers a DID just before it writes the repo's first commit.
 *
 * `startDirectory` is the PLC directory alone, for a process apart from the relay: the same accounts,
 * keys, DIDs and handles as a simulator with the same seed and `accounts` (all derived from them, see
 * account.ts), as they are before any #identity or #account event; it generates no events and holds
 * no repos, so its repo queries answer RepoNotFound and subscribeRepos is not served. With
 * `exportFrom` its `/export` is the paced simulator's there.
 */
import type { Server, ServerWebSocket } from 'bun';
import { errorFrame, infoFrame } from './frames.ts';
import { AccountDirectory } from './account.ts';
import type { GroundTruth } from './ground-truth.ts';
import { DEFAULT_EPOCH_MS } from './clock.ts';
import { Network, type NetworkStats } from './network.ts';
import { didDocument, exportLine, exportQuery, exportRange, exportResponse, handleHttp, XrpcError, xrpcErrorResponse } from './routes.ts';
import { Rng } from './rng.ts';
import { FAULT_KINDS, type FaultRates } from './workload.ts';
import { SIM_KEY_FORMS, type KeyFormShares } from './keys.ts';

export interface SimulatorOptions {
  /** 0 = any free port (default 0; the CLI defaults to SIM_PORT or 2470) */
  port?: number;
  hostname?: string;
  seed?: string | number;
  /** account pool size (default 1000) */
  accounts?: number;
  /** commits to generate before idling (default 10_000) */
  commits?: number;
  /** share (0..1) of commits written by an account's first commit (default 0.1; 1 = new-user storm) */
  newAccountShare?: number;
  /** commits released per second; 0 = as fast as subscribers read (default 0) */
  rate?: number;
  /** per-commit probabilities of each fault (default all 0) */
  faults?: Partial<FaultRates>;
  /** #identity / #account / #sync events per commit (default 0) */
  identityShare?: number;
  accountShare?: number;
  syncShare?: number;
  /** generate everything before resolving (default false) */
  pregenerate?: boolean;
  /** frames kept for cursor replay (default: all) */
  retain?: number;
  /** simulated clock start, ms since epoch (default 2025-01-01T00:00:00Z) */
  epochMs?: number;
  /** per-subscriber send buffer before waiting for drain, bytes (default 1 MiB) */
  backpressureBytes?: number;
  /** PLC directory faults for identity tests: share of 500 answers, and a delay per answer */
  plc?: { errorRate?: number; delayMs?: number };
  /** what DID documents name as the PDS (default: this server) */
  pdsUrl?: string;
  /** `startDirectory`: the (paced) simulator whose `/export` this directory passes on */
  exportFrom?: string;
  /** keep the ground truth (default true); without it `groundTruth()` throws */
  groundTruth?: boolean;
  /** share of accounts per signing-key form (keys.ts; default: all `multikey`) */
  keyForms?: KeyFormShares;
}

/** What `startDirectory` reads: the accounts and their key forms, the PLC fault knobs and where the PDS is. */
export type DirectoryOptions = Pick<SimulatorOptions, 'port' | 'hostname' | 'seed' | 'accounts' | 'keyForms' | 'plc' | 'pdsUrl' | 'exportFrom'>;

export interface SimDirectory {
  /** http base URL (PLC directory and identity queries) */
  readonly url: string;
  readonly port: number;
  readonly directory: AccountDirectory;
  stop(): Promise<void>;
}

export interface Simulator {
  /** http base URL (PLC directory and PDS) */
  readonly url: string;
  /** ws URL of com.atproto.sync.subscribeRepos */
  readonly wsUrl: string;
  readonly port: number;
  /** frames written to subscriber sockets so far */
  readonly eventsSent: number;
  /** highest seq released to subscribers */
  readonly lastSeq: number;
  /** commits generated so far (the `commits` option counts these) */
  readonly commitsGenerated: number;
  /** frames released so far (a consumer reading from cursor 0 receives this many once all are out) */
  readonly framesReleased: number;
  /** Paced (`rate` > 0): wall-clock time (ms since the epoch) from which releases are counted: commit n is due at this + n / rate seconds. */
  readonly pacingStartedAt: number;
  readonly stats: NetworkStats;
  readonly network: Network;
  /** The ground truth over everything generated so far (see ground-truth.ts); throws if not kept. */
  groundTruth(): GroundTruth;
  /** Resolves when all `commits` are generated; rejects if generation failed. */
  generated(): Promise<void>;
  stop(): Promise<void>;
}

interface SubscriberData {
  cursor: number | null;
  next: number;
  blocked: boolean;
  open: boolean;
}

type Socket = ServerWebSocket<SubscriberData>;

const BATCH = 256;
const PUMP_BUDGET = 4096;
const LOOKAHEAD = 1024;
const SUBSCRIBE_PATH = '/xrpc/com.atproto.sync.subscribeRepos';

const share = (name: string, value: number | undefined, fallback: number): number => {
  const v = value ?? fallback;
  if (!Number.isFinite(v) || v < 0 || v > 1) throw new RangeError(`${name} must be within 0..1, got ${v}`);
  return v;
};

const count = (name: string, value: number | undefined, fallback: number, min = 0): number => {
  const v = value ?? fallback;
  if (!Number.isFinite(v) || v < min || (Number.isInteger(fallback) && !Number.isInteger(v))) {
    throw new RangeError(`${name} must be a number >= ${min}, got ${v}`);
  }
  return v;
};

const keyFormShares = (options: Pick<SimulatorOptions, 'keyForms'>): KeyFormShares => {
  const shares: KeyFormShares = {};
  let total = 0;
  for (const form of SIM_KEY_FORMS) {
    if (options.keyForms?.[form] === undefined) continue;
    shares[form] = share(`keyForms.${form}`, options.keyForms[form], 0);
    if (form !== 'multikey') total += shares[form];
  }
  if (total > 1) throw new RangeError('the key-form shares must not exceed 1');
  return shares;
};

const nextTick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export const startSimulator = async (options: SimulatorOptions = {}): Promise<Simulator> => {
  const faults = {} as FaultRates;
  for (const kind of FAULT_KINDS) faults[kind] = share(`faults.${kind}`, options.faults?.[kind], 0);
  const contentFaults = faults.badSignature + faults.unknownCollection + faults.invalidRecord;
  if (contentFaults > 1) throw new RangeError('badSignature + unknownCollection + invalidRecord must not exceed 1');
  const total = count('commits', options.commits, 10_000);
  const rate = count('rate', options.rate, 0);
  if (rate > 0 && options.pregenerate === true && options.retain !== undefined) {
    throw new RangeError('a paced stream generated up front keeps every frame until it is released: leave retain unset');
  }
  const seed = String(options.seed ?? 1);
  const network = new Network({
    seed,
    accounts: count('accounts', options.accounts, 1000, 1),
    newAccountShare: share('newAccountShare', options.newAccountShare, 0.1),
    faults,
    identityShare: share('identityShare', options.identityShare, 0),
    accountShare: share('accountShare', options.accountShare, 0),
    syncShare: share('syncShare', options.syncShare, 0),
    retain: count('retain', options.retain, Number.MAX_SAFE_INTEGER, 1),
    epochMs: count('epochMs', options.epochMs, DEFAULT_EPOCH_MS),
    groundTruth: options.groundTruth ?? true,
    keyForms: keyFormShares(options),
  });
  const log = network.log;
  const http = httpHandler(network.directory, seed, options);

  const subscribers = new Set<Socket>();
  /** commits generated so far */
  let steps = 0;
  /** commits released so far (paced) */
  let releasedSteps = 0;
  /** paced: log position after each generated commit not released yet (commit releasedSteps + 1 first) */
  const pendingEnds: number[] = [];
  let released = 0;
  let eventsSent = 0;
  let stopped = false;
  let failure: unknown = null;
  let running: Promise<void> | null = null;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let pumpScheduled = false;
  // paced: releases are counted from here; a pregenerated stream restarts the count once generated
  let startedAt = performance.now();
  let pacingStartedAt = Date.now();
  const done = Promise.withResolvers<void>();
  // generated() may be awaited late or never; don't turn a failure into an unhandled rejection here
  done.promise.catch(() => {});

  /** paced: the commit number of each new account's first commit, in `network.newAccounts` order */
  const firstCommitSteps: number[] = [];
  const registeredAt = (k: number): number => Math.floor(pacingStartedAt + (firstCommitSteps[k]! / rate) * 1000) - REGISTRATION_LEAD_MS;
  const pacedExport = (url: URL): Response => {
    const { after, count } = exportQuery(url);
    const now = Date.now();
    let low = 0;
    let high = firstCommitSteps.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (registeredAt(middle) > after) high = middle;
      else low = middle + 1;
    }
    const lines: string[] = [];
    for (let k = low; k < firstCommitSteps.length && lines.length < count && registeredAt(k) <= now; k++) {
      lines.push(exportLine(network.directory, network.newAccounts[k]!, options.pdsUrl ?? baseUrl, registeredAt(k)));
    }
    return exportResponse(lines);
  };

  const releasedSeq = (): number => (released === 0 ? 0 : (log.markAt(released - 1) ?? log.lastSeq));

  const generate = (n: number): void => {
    for (let i = 0; i < n && steps < total; i++) {
      network.step();
      if (rate > 0) while (firstCommitSteps.length < network.newAccounts.length) firstCommitSteps.push(steps);
      steps++;
      if (rate > 0) pendingEnds.push(log.end);
    }
    if (steps >= total) done.resolve();
  };

  /** Commits that should be out by now, when paced. */
  const dueSteps = (): number => Math.min(total, Math.floor(((performance.now() - startedAt) / 1000) * rate));

  const release = (): void => {
    if (rate === 0) {
      released = log.end;
      return;
    }
    const due = Math.min(dueSteps(), steps);
    if (due === 0) released = log.start;
    else if (due > releasedSteps) {
      released = Math.max(released, pendingEnds[due - releasedSteps - 1]!);
      pendingEnds.splice(0, due - releasedSteps);
      releasedSteps = due;
    }
  };

  const wantsMore = (): boolean => {
    if (stopped || steps >= total) return false;
    if (rate > 0) return steps < dueSteps();
    for (const ws of subscribers) {
      if (ws.data.open && !ws.data.blocked && ws.data.next + LOOKAHEAD >= log.end) return true;
    }
    return false;
  };

  // Corked: everything due leaves in one write instead of a system call per frame, as a busy relay
  // fills its socket. flood-noverify 100k, four alternating pairs: the relay's CPU per commit
  // 25 / 14 / 12 / 17 -> 16 / 10 / 10 / 12 us (the simulator shares the box with the ingester).
  const pump = (ws: Socket): void => {
    const sub = ws.data;
    ws.cork(() => pumpCorked(ws, sub));
  };

  const pumpCorked = (ws: Socket, sub: Socket['data']): void => {
    let budget = PUMP_BUDGET;
    while (sub.open && !sub.blocked && sub.next < released && budget-- > 0) {
      if (sub.next < log.start) {
        // fell behind the retention window: say so, then carry on from the oldest frame kept
        ws.send(infoFrame({ name: 'OutdatedCursor', message: 'consumer fell behind the retained window' }));
        sub.next = log.start;
        continue;
      }
      const frame = log.at(sub.next)!;
      const result = ws.send(frame);
      if (result === 0) {
        sub.open = false;
        break;
      }
      sub.next++;
      eventsSent++;
      if (result === -1) sub.blocked = true;
    }
  };

  const pumpAll = (): void => {
    pumpScheduled = false;
    release();
    let more = false;
    for (const ws of subscribers) {
      pump(ws);
      if (ws.data.open && !ws.data.blocked && ws.data.next < released) more = true;
    }
    if (more) schedulePump();
    kick();
  };

  function schedulePump(): void {
    if (pumpScheduled || stopped) return;
    pumpScheduled = true;
    setImmediate(pumpAll);
  }

  const run = async (): Promise<void> => {
    while (wantsMore()) {
      generate(rate > 0 ? Math.min(BATCH, dueSteps() - steps) : BATCH);
      release();
      for (const ws of subscribers) pump(ws);
      await nextTick();
    }
  };

  function kick(): void {
    if (running !== null || stopped || failure !== null) return;
    if (!wantsMore()) {
      // paced: come back when the next commit is due (until the last one is out: it may fall due
      // between the release above and this check)
      if (rate > 0 && releasedSteps < total && timer === null) {
        timer = setTimeout(() => {
          timer = null;
          pumpAll();
        }, Math.min(20, Math.max(1, Math.ceil(1000 / rate))));
      }
      return;
    }
    running = run()
      .catch((err: unknown) => {
        failure = err;
        done.reject(new Error('simulator: event generation failed', { cause: err }));
        console.error('simulator: event generation failed', err);
      })
      .finally(() => {
        running = null;
        if (!stopped && failure === null) schedulePump();
      });
  }

  if (options.pregenerate === true) {
    while (steps < total) {
      generate(BATCH * 4);
      await nextTick();
    }
    startedAt = performance.now();
    pacingStartedAt = Date.now();
  }
  if (total === 0) done.resolve();

  const server: Server<SubscriberData> = Bun.serve<SubscriberData>({
    port: count('port', options.port, 0),
    hostname: options.hostname ?? '127.0.0.1',
    fetch: async (request, srv) => {
      const url = new URL(request.url);
      if (url.pathname === SUBSCRIBE_PATH) {
        const text = url.searchParams.get('cursor');
        const cursor = text === null || text === '' ? null : Number(text);
        if (cursor !== null && (!Number.isSafeInteger(cursor) || cursor < 0)) {
          return Response.json({ error: 'InvalidRequest', message: 'cursor must be a non-negative integer' }, { status: 400 });
        }
        if (srv.upgrade(request, { data: { cursor, next: 0, blocked: false, open: true } })) return undefined;
        return Response.json({ error: 'InvalidRequest', message: 'expected a WebSocket upgrade' }, { status: 400 });
      }
      if (rate > 0 && url.pathname === '/export') return orXrpcError(() => pacedExport(url));
      return http(request, url, baseUrl);
    },
    websocket: {
      backpressureLimit: count('backpressureBytes', options.backpressureBytes, 1 << 20, 1),
      open(ws) {
        release();
        const sub = ws.data;
        if (sub.cursor === null) {
          sub.next = released;
        } else if (sub.cursor > releasedSeq()) {
          ws.send(errorFrame('FutureCursor', 'Cursor in the future.'));
          sub.open = false;
          ws.close(1008, 'FutureCursor');
          return;
        } else {
          if (log.firstSeq > 0 && sub.cursor < log.firstSeq - 1) {
            ws.send(infoFrame({ name: 'OutdatedCursor', message: 'Requested cursor exceeded limit. Possibly missing events' }));
          }
          sub.next = Math.min(log.startAfter(sub.cursor), released);
        }
        subscribers.add(ws);
        schedulePump();
      },
      message() {
        // subscribers have nothing to say
      },
      drain(ws) {
        ws.data.blocked = false;
        schedulePump();
      },
      close(ws) {
        ws.data.open = false;
        subscribers.delete(ws);
      },
    },
  });

  const port = server.port ?? 0;
  const baseUrl = baseUrlOf(server);
  release();
  kick();

  return {
    url: baseUrl,
    wsUrl: `${baseUrl.replace(/^http/, 'ws')}${SUBSCRIBE_PATH}`,
    port,
    get eventsSent() {
      return eventsSent;
    },
    get lastSeq() {
      return releasedSeq();
    },
    get commitsGenerated() {
      return steps;
    },
    get framesReleased() {
      return released;
    },
    pacingStartedAt,
    stats: network.stats,
    network,
    groundTruth: () => network.groundTruth(),
    generated: () => done.promise,
    async stop() {
      stopped = true;
      if (timer !== null) clearTimeout(timer);
      if (running !== null) await running;
      await server.stop(true);
    },
  };
};

/** How long before its first commit is due a paced account appears in the directory's export. */
export const REGISTRATION_LEAD_MS = 200;
const PLC_REQUEST = /^\/(did:|export$)/;
const DOCUMENT_HEADERS = { 'content-type': 'application/json; charset=utf-8' };

const baseUrlOf = (server: Server<unknown>): string => {
  const host = server.hostname ?? '127.0.0.1';
  return `http://${host.includes(':') ? `[${host}]` : host}:${server.port ?? 0}`;
};

/** PLC and PDS queries; DID documents get the PLC fault knobs and name `pdsUrl` (or this server) as the PDS. */
const httpHandler = (directory: AccountDirectory, seed: string, options: Pick<SimulatorOptions, 'plc' | 'pdsUrl'>) => {
  const errorRate = share('plc.errorRate', options.plc?.errorRate, 0);
  const delayMs = count('plc.delayMs', options.plc?.delayMs, 0);
  const rng = Rng.derive(seed, 'plc');
  const pdsUrl = options.pdsUrl;
  if (pdsUrl !== undefined && !/^https?:\/\/[^/]/.test(pdsUrl)) throw new RangeError(`pdsUrl must be an http(s) URL, got ${pdsUrl}`);
  return async (request: Request, url: URL, ownUrl: string): Promise<Response> => {
    if (PLC_REQUEST.test(url.pathname) && (delayMs > 0 || errorRate > 0)) {
      if (delayMs > 0) await Bun.sleep(delayMs);
      if (rng.chance(errorRate)) return Response.json({ message: 'simulated PLC failure' }, { status: 500 });
    }
    return handleHttp(directory, request, pdsUrl ?? ownUrl);
  };
};

/** `answer()`, or the XRPC error it threw as a response. */
const orXrpcError = (answer: () => Response): Response => {
  try {
    return answer();
  } catch (err) {
    if (err instanceof XrpcError) return xrpcErrorResponse(err);
    throw err;
  }
};

/** `url`'s answer, passed on. */
const forward = async (url: string): Promise<Response> => {
  const response = await fetch(url);
  return new Response(await response.arrayBuffer(), { status: response.status, headers: { 'content-type': response.headers.get('content-type') ?? 'application/json' } });
};

export const startDirectory = async (options: DirectoryOptions = {}): Promise<SimDirectory> => {
  const seed = String(options.seed ?? 1);
  const directory = new AccountDirectory(seed, count('accounts', options.accounts, 1000, 1), keyFormShares(options));
  const http = httpHandler(directory, seed, options);
  // Its accounts never change (it generates no events), so every DID document is made once, before
  // this resolves, and kept by path: deriving an account's key and encoding its document cost ~85 us
  // of CPU a request, on the machine the benchmark measures the ingester on (a real directory is
  // elsewhere). Anything else, and every request while PLC faults are simulated, goes to `http`.
  const faults = (options.plc?.delayMs ?? 0) > 0 || (options.plc?.errorRate ?? 0) > 0;
  const documents = new Map<string, string>();
  const exportLines: string[] = [];
  const server = Bun.serve({
    port: count('port', options.port, 0),
    hostname: options.hostname ?? '127.0.0.1',
    fetch: (request) => {
      const url = new URL(request.url);
      const document = request.method === 'GET' ? documents.get(url.pathname) : undefined;
      if (document !== undefined) return new Response(document, { headers: DOCUMENT_HEADERS });
      if (url.pathname === '/export' && options.exportFrom !== undefined) return forward(`${options.exportFrom.replace(/\/+$/, '')}/export${url.search}`);
      if (url.pathname === '/export' && exportLines.length > 0) {
        return orXrpcError(() => {
          const { from, to } = exportRange(directory, url);
          return exportResponse(exportLines.slice(from, to));
        });
      }
      return http(request, url, baseUrl);
    },
  });
  const baseUrl = baseUrlOf(server);
  if (!faults) {
    for (let index = 0; index < directory.size; index++) {
      const account = directory.at(index);
      documents.set(`/${account.did}`, JSON.stringify(didDocument(account, options.pdsUrl ?? baseUrl)));
      if (options.exportFrom === undefined) exportLines.push(exportLine(directory, index, options.pdsUrl ?? baseUrl));
    }
  }
  return {
    url: baseUrl,
    port: server.port ?? 0,
    directory,
    async stop() {
      await server.stop(true);
    },
  };
};
