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
 * - `hosts` > 1: every host is a listener of its own on 127.0.0.(h + 2) (hosts.ts), on `port` when
 *   one is given (each on a free port of its own for port 0); DID documents and the export name an
 *   account's host as its PDS; a host's getRepo/getRecord/listRepos answer for its own accounts
 *   only (RepoNotFound for others), `hostFaults` make a host's getRepo hostile. This server stays
 *   the relay and the PLC directory: listHosts, listRepos over every account, no getRepo (501).
 *   With one host, listHosts names this server.
 * - `preload` builds repos that exist before the simulation (preload.ts) before this resolves: no
 *   frames for them, a subscriber from cursor 0 sees only live events; the live commits chain
 *   from them. Paced, the export lists the preloaded accounts from the start.
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
import { didDocument, exportLine, exportQuery, exportRange, exportResponse, handleHttp, XrpcError, xrpcErrorResponse, type HostSummary, type HttpScope, type PdsOf, type RepoScope } from './routes.ts';
import type { Account } from './account.ts';
import { DEFAULT_RATE_LIMIT_EVERY, HOST_FAULTS, hostAddress, hostileGetRepo, hostileKey, importableDespite, type HostFault, type HostileContext } from './hosts.ts';
import type { PreloadOptions } from './preload.ts';
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
  /**
   * PDS hosts (default 1: this server is the relay, the PLC directory and the one PDS). With more,
   * host h is a listener of its own on 127.0.0.(h + 2) (hosts.ts), DID documents name it as the
   * PDS of its accounts, and this server is the relay and the PLC directory: it answers listHosts
   * and listRepos over every account, but getRepo and getRecord only on the hosts.
   */
  hosts?: number;
  /** hostile hosts by index (hosts.ts), e.g. `{ 3: 'garbage' }` */
  hostFaults?: Record<number, HostFault>;
  /** a `rate-limited` host refuses every Nth getRepo (default 3) */
  rateLimitEvery?: number;
  /** repos that exist before the simulation starts (preload.ts) */
  preload?: PreloadOptions;
}

/** One PDS host of a started simulator. */
export interface SimHost {
  readonly index: number;
  /** http base URL, what DID documents name */
  readonly url: string;
  /** the bare address, what an allowlist of hosts names (`ALLOW_PRIVATE_HOSTS`) */
  readonly address: string;
  /** `address:port`, what listHosts calls it */
  readonly hostname: string;
  readonly fault: HostFault | null;
  /** account indexes on this host, ascending */
  readonly accounts: Int32Array;
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
  /** The PDS hosts: with `hosts` 1, the one entry is this server itself. */
  readonly hosts: readonly SimHost[];
  /** Every host's bare address (127.0.0.1 with one host), for an allowlist. */
  readonly hostAddresses: readonly string[];
  /** The host index of `did`'s account (undefined for an unknown DID). */
  hostOf(did: string): number | undefined;
  /** DIDs whose repos no host hands out correctly (on a hostile host other than rate-limited), sorted. */
  unimportableDids(): string[];
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
  const hostCount = count('hosts', options.hosts, 1, 1);
  const hostFaults = options.hostFaults ?? {};
  for (const [key, fault] of Object.entries(hostFaults)) {
    const h = Number(key);
    if (!Number.isInteger(h) || h < 0 || h >= hostCount) throw new RangeError(`hostFaults: no host ${key} (hosts 0..${hostCount - 1})`);
    if (!(HOST_FAULTS as readonly string[]).includes(fault)) throw new RangeError(`hostFaults: unknown fault "${fault}" (${HOST_FAULTS.join(', ')})`);
  }
  if (hostCount > 1 && options.pdsUrl !== undefined) throw new RangeError('pdsUrl names one PDS for every account: leave it unset with hosts > 1');
  const rateLimitEvery = count('rateLimitEvery', options.rateLimitEvery, DEFAULT_RATE_LIMIT_EVERY, 2);
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
    hosts: hostCount,
    hostFaults: options.hostFaults ?? {},
    preload: options.preload ?? null,
  });
  const log = network.log;
  const http = httpHandler(network.directory, seed, options);
  const hostUrls: string[] = [];
  /** what DID documents name as the PDS: with many hosts each account's own, else `pdsUrl` or this server */
  const pdsOf = (): PdsOf => (hostCount > 1 ? (account: Account) => hostUrls[network.hostOf[account.index]!]! : (options.pdsUrl ?? baseUrl));

  /** what this server serves besides the PLC directory and the firehose (set once the hosts are known) */
  let relayScope: HttpScope = {};
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
  // preloaded accounts (0 .. P - 1) were registered before the simulation, one ms apart; then the
  // accounts of `network.newAccounts`, each just before its first commit
  const preloadedCount = network.preloaded?.sizes.length ?? 0;
  const exportedAccount = (k: number): number => (k < preloadedCount ? k : network.newAccounts[k - preloadedCount]!);
  const registeredAt = (k: number): number =>
    k < preloadedCount
      ? pacingStartedAt - REGISTRATION_LEAD_MS - (preloadedCount - k)
      : Math.floor(pacingStartedAt + (firstCommitSteps[k - preloadedCount]! / rate) * 1000) - REGISTRATION_LEAD_MS;
  const pacedExport = (url: URL): Response => {
    const { after, count } = exportQuery(url);
    const now = Date.now();
    const listed = preloadedCount + firstCommitSteps.length;
    let low = 0;
    let high = listed;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (registeredAt(middle) > after) high = middle;
      else low = middle + 1;
    }
    const lines: string[] = [];
    for (let k = low; k < listed && lines.length < count && registeredAt(k) <= now; k++) {
      lines.push(exportLine(network.directory, exportedAccount(k), pdsOf(), registeredAt(k)));
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
      return http(request, url, pdsOf(), relayScope);
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

  // the PDS hosts: with one, this server; with more, a listener each (on this port where one was asked for)
  const byHost: number[][] = Array.from({ length: hostCount }, () => []);
  for (let i = 0; i < network.hostOf.length; i++) byHost[network.hostOf[i]!]!.push(i);
  const hostServers: Server<unknown>[] = [];
  const hosts: SimHost[] = [];
  const badKey = hostileKey(seed);
  for (let h = 0; h < hostCount; h++) {
    const accounts = Int32Array.from(byHost[h]!);
    const fault = hostFaults[h] ?? null;
    const ctx: HostileContext = { seed, key: badKey, rateLimitEvery, requests: 0 };
    const repos: RepoScope = {
      servesRepos: true,
      holds: (account) => network.hostOf[account.index] === h,
      *withRepos(from) {
        let i = lowerBound(accounts, from);
        for (; i < accounts.length; i++) {
          const account = network.directory.peek(accounts[i]!);
          if (account !== undefined && account.hasRepo) yield account;
        }
      },
      ...(fault === null ? {} : { getRepo: (account: Account) => hostileGetRepo(fault, account, ctx) }),
    };
    if (hostCount === 1) {
      const address = server.hostname ?? '127.0.0.1';
      hosts.push({ index: 0, url: baseUrl, address, hostname: `${address}:${port}`, fault, accounts });
      relayScope = { repos: fault === null ? undefined : repos, hosts: hostSummaries };
      continue;
    }
    const address = hostAddress(h);
    const hostServer = Bun.serve({
      port: count('port', options.port, 0),
      hostname: address,
      fetch: (request) => handleHttp(network.directory, request, pdsOf(), { plc: false, repos }),
    });
    hostServers.push(hostServer);
    const url = baseUrlOf(hostServer);
    hostUrls.push(url);
    hosts.push({ index: h, url, address, hostname: `${address}:${hostServer.port ?? 0}`, fault, accounts });
  }
  function hostSummaries(): HostSummary[] {
    return hosts.map((host) => {
      let accountCount = 0;
      for (const i of host.accounts) {
        const account = network.directory.peek(i);
        if (account !== undefined && account.hasRepo && account.status !== 'deleted') accountCount++;
      }
      return { hostname: host.hostname, seq: network.hostSeq[host.index]!, accountCount, status: 'active' };
    });
  }
  if (hostCount > 1) {
    relayScope = {
      repos: { servesRepos: false, holds: () => true, withRepos: (from) => network.directory.withRepos(from) },
      hosts: hostSummaries,
    };
  }
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
    hosts,
    hostAddresses: hosts.map((h) => h.address),
    hostOf: (did) => {
      const account = network.directory.byDid(did);
      return account === undefined ? undefined : network.hostOf[account.index];
    },
    unimportableDids: () =>
      hosts
        .filter((h) => !importableDespite(h.fault ?? undefined))
        .flatMap((h) => [...h.accounts].map((i) => network.directory.at(i).did))
        .sort(),
    groundTruth: () => network.groundTruth(),
    generated: () => done.promise,
    async stop() {
      stopped = true;
      if (timer !== null) clearTimeout(timer);
      if (running !== null) await running;
      await Promise.all([server.stop(true), ...hostServers.map((h) => h.stop(true))]);
    },
  };
};

/** First position of `sorted` holding a value >= `value`. */
const lowerBound = (sorted: Int32Array, value: number): number => {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
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
  return async (request: Request, url: URL, pds: PdsOf, scope: HttpScope = {}): Promise<Response> => {
    if (PLC_REQUEST.test(url.pathname) && (delayMs > 0 || errorRate > 0)) {
      if (delayMs > 0) await Bun.sleep(delayMs);
      if (rng.chance(errorRate)) return Response.json({ message: 'simulated PLC failure' }, { status: 500 });
    }
    return handleHttp(directory, request, pds, scope);
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
      return http(request, url, options.pdsUrl ?? baseUrl);
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
