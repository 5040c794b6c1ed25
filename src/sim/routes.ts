/**
 * The simulator's HTTP read endpoints: a PLC directory and a PDS's sync/repo/identity queries.
 *
 * Owns: request parsing and response shapes for `GET /{did}` and the few XRPC queries below.
 * Promises: plain `Request` in, `Response` out, no Bun APIs; XRPC errors are `{error, message}` JSON
 * with 400 (bad or missing parameters), 404 (unknown repo, record or handle) or 501 (unknown
 * method); a DID document for an unknown DID is 404, for a deleted account 410 (tombstone).
 *
 *   GET /{did}                                         DID document (id, alsoKnownAs, #atproto Multikey, #atproto_pds)
 *   GET /export?count&after                            JSON lines: each account's creation (a tombstone once deleted),
 *                                                      oldest first, created strictly after `after` (ISO), count <= 1000
 *   GET /xrpc/com.atproto.sync.getRepo?did=            full repo CAR (commit, MST, records)
 *   GET /xrpc/com.atproto.sync.listRepos?limit&cursor  {cursor?, repos: [{did, head, rev, active, status?}]}
 *   GET /xrpc/com.atproto.repo.getRecord?repo&collection&rkey   {uri, cid, value}
 *   GET /xrpc/com.atproto.identity.resolveHandle?handle=        {did}
 *   GET /xrpc/com.atproto.sync.listHosts?limit&cursor  {cursor?, hosts: [{hostname, seq, accountCount, status}]}
 *                                                      (only where the server is given the hosts: the relay)
 *
 * A `RepoScope` says which repos a server holds: all of them (one PDS, today's default), one host's
 * (others are RepoNotFound, listRepos lists only its own), or none (the relay of many hosts: it
 * lists every repo but serves none, so getRepo and getRecord are MethodNotImplemented there).
 */
import * as CBOR from '@atcute/cbor';
import type { Account, AccountDirectory } from './account.ts';
import { cidString } from './block.ts';

export class XrpcError extends Error {
  readonly status: number;
  readonly error: string;

  constructor(status: number, error: string, message: string) {
    super(message);
    this.status = status;
    this.error = error;
  }
}

const json = (body: unknown, status = 200): Response =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json; charset=utf-8' } });

export const xrpcErrorResponse = (err: XrpcError): Response => json({ error: err.error, message: err.message }, err.status);

const param = (url: URL, name: string): string => {
  const value = url.searchParams.get(name);
  if (value === null || value === '') throw new XrpcError(400, 'InvalidRequest', `Error: Params must have the property "${name}"`);
  return value;
};

const DID_PATH = /^\/(did:[a-z]+:[a-zA-Z0-9._:%-]+)$/;

/** What DID documents name as an account's PDS: one URL for all, or one per account. */
export type PdsOf = string | ((account: Account) => string);

const pdsFor = (pds: PdsOf, account: Account): string => (typeof pds === 'string' ? pds : pds(account));

/** Which repos a server holds (see the top comment). */
export interface RepoScope {
  /** false: the relay of many hosts, which lists repos but serves none */
  readonly servesRepos: boolean;
  holds(account: Account): boolean;
  /** accounts held here that have a repo, index order, from account index `from` */
  withRepos(from: number): Iterable<Account>;
  /** a hostile host's getRepo answer, or null for the correct one */
  getRepo?(account: Account): Response | null;
}

export const everyRepo = (directory: AccountDirectory): RepoScope => ({
  servesRepos: true,
  holds: () => true,
  withRepos: (from) => directory.withRepos(from),
});

export interface HostSummary {
  readonly hostname: string;
  readonly seq: number;
  readonly accountCount: number;
  readonly status: 'active' | 'idle' | 'offline' | 'throttled' | 'banned';
}

export const didDocument = (account: Account, pds: PdsOf): Record<string, unknown> => ({
  '@context': ['https://www.w3.org/ns/did/v1', 'https://w3id.org/security/multikey/v1', 'https://w3id.org/security/suites/secp256k1-2019/v1'],
  id: account.did,
  alsoKnownAs: [`at://${account.handle}`],
  verificationMethod: [{ id: `${account.did}#atproto`, ...account.key.method, controller: account.did }],
  service: [{ id: '#atproto_pds', type: 'AtprotoPersonalDataServer', serviceEndpoint: pdsFor(pds, account) }],
});

/** Account `index`'s line in the directory's export, created at `createdAtMs` (default: its registration). */
export const exportLine = (directory: AccountDirectory, index: number, pds: PdsOf, createdAtMs = directory.registeredFrom + index): string => {
  const account = directory.at(index);
  const didKey = account.key.didKey;
  const operation =
    account.status === 'deleted'
      ? { type: 'plc_tombstone', prev: null, sig: 'sim' }
      : {
          type: 'plc_operation',
          rotationKeys: [didKey],
          verificationMethods: { atproto: didKey },
          alsoKnownAs: [`at://${account.handle}`],
          services: { atproto_pds: { type: 'AtprotoPersonalDataServer', endpoint: pdsFor(pds, account) } },
          prev: null,
          sig: 'sim',
        };
  return JSON.stringify({ did: account.did, operation, nullified: false, createdAt: new Date(createdAtMs).toISOString() });
};

/** An export request's `after` (ms since the epoch; -Infinity when absent) and `count` (at most 1,000). */
export const exportQuery = (url: URL): { after: number; count: number } => {
  const countText = url.searchParams.get('count');
  const count = countText === null ? 1000 : Number(countText);
  if (!Number.isInteger(count) || count < 1) throw new XrpcError(400, 'InvalidRequest', 'Invalid count parameter');
  const afterText = url.searchParams.get('after');
  const after = afterText === null ? -Infinity : Date.parse(afterText);
  if (Number.isNaN(after)) throw new XrpcError(400, 'InvalidRequest', 'Invalid after parameter');
  return { after, count: Math.min(count, 1000) };
};

/** The export page after `url`'s `after`, every account registered before the simulation: which account indexes it lists. */
export const exportRange = (directory: AccountDirectory, url: URL): { from: number; to: number } => {
  const { after, count } = exportQuery(url);
  const from = Math.min(directory.size, Math.max(0, Math.floor(after - directory.registeredFrom) + 1));
  return { from, to: Math.min(directory.size, from + count) };
};

const EXPORT_HEADERS = { 'content-type': 'application/jsonlines' };

export const exportResponse = (lines: readonly string[]): Response => new Response(lines.join('\n'), { headers: EXPORT_HEADERS });

const exportPage = (directory: AccountDirectory, url: URL, pds: PdsOf): Response => {
  const { from, to } = exportRange(directory, url);
  const lines: string[] = [];
  for (let index = from; index < to; index++) lines.push(exportLine(directory, index, pds));
  return exportResponse(lines);
};

const repoAccount = (directory: AccountDirectory, did: string, scope: RepoScope): Account => {
  const account = directory.byDid(did);
  if (account === undefined || !account.hasRepo || account.status === 'deleted' || !scope.holds(account)) {
    throw new XrpcError(404, 'RepoNotFound', `Could not find repo for DID: ${did}`);
  }
  return account;
};

const servedHere = (scope: RepoScope, method: string): void => {
  if (!scope.servesRepos) throw new XrpcError(501, 'MethodNotImplemented', `Method not implemented: ${method} (ask the account's PDS)`);
};

const getRepo = (directory: AccountDirectory, url: URL, scope: RepoScope): Response => {
  servedHere(scope, 'com.atproto.sync.getRepo');
  const account = repoAccount(directory, param(url, 'did'), scope);
  if (account.status === 'deactivated') throw new XrpcError(400, 'RepoDeactivated', `Repo has been deactivated: ${account.did}`);
  const hostile = scope.getRepo?.(account) ?? null;
  if (hostile !== null) return hostile;
  const car = account.repo.exportCar();
  if (car === null) throw new XrpcError(404, 'RepoNotFound', `Could not find repo for DID: ${account.did}`);
  return new Response(car, { headers: { 'content-type': 'application/vnd.ipld.car' } });
};

/** A page's `limit` (1..max, default `fallback`) and `cursor` (a non-negative integer, default 0). */
const page = (url: URL, fallback: number): { limit: number; from: number } => {
  const limitText = url.searchParams.get('limit');
  const limit = limitText === null ? fallback : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new XrpcError(400, 'InvalidRequest', 'limit must be an integer in 1..1000');
  const cursorText = url.searchParams.get('cursor');
  const from = cursorText === null || cursorText === '' ? 0 : Number(cursorText);
  if (!Number.isInteger(from) || from < 0) throw new XrpcError(400, 'InvalidRequest', 'malformed cursor');
  return { limit, from };
};

const listRepos = (_directory: AccountDirectory, url: URL, scope: RepoScope): Response => {
  const { limit, from } = page(url, 500);
  const repos: Record<string, unknown>[] = [];
  let last = -1;
  for (const account of scope.withRepos(from)) {
    if (account.status === 'deleted') continue;
    if (repos.length === limit) break;
    const head = account.repo.head!;
    repos.push({
      did: account.did,
      head: cidString(head.cid),
      rev: account.repo.rev,
      active: account.status === 'active',
      ...(account.status === 'active' ? {} : { status: account.status }),
    });
    last = account.index;
  }
  return json(repos.length === limit ? { cursor: String(last + 1), repos } : { repos });
};

/** listHosts over `hosts` (index order; the cursor is the next index), lexicon default limit 200. */
export const listHostsResponse = (hosts: readonly HostSummary[], url: URL): Response => {
  const { limit, from } = page(url, 200);
  const slice = hosts.slice(from, from + limit).map((h) => ({ hostname: h.hostname, seq: h.seq, accountCount: h.accountCount, status: h.status }));
  return json(from + limit < hosts.length ? { cursor: String(from + limit), hosts: slice } : { hosts: slice });
};

const getRecord = (directory: AccountDirectory, url: URL, scope: RepoScope): Response => {
  servedHere(scope, 'com.atproto.repo.getRecord');
  const repo = param(url, 'repo');
  const collection = param(url, 'collection');
  const rkey = param(url, 'rkey');
  const found = repo.startsWith('did:') ? directory.byDid(repo) : directory.byHandle(repo);
  if (found === undefined || !scope.holds(found)) throw new XrpcError(404, 'RepoNotFound', `Could not find repo: ${repo}`);
  const account = repoAccount(directory, found.did, scope);
  const block = account.repo.getRecord(collection, rkey);
  if (block === undefined) throw new XrpcError(404, 'RecordNotFound', `Could not locate record: at://${account.did}/${collection}/${rkey}`);
  return json({ uri: `at://${account.did}/${collection}/${rkey}`, cid: cidString(block.cid), value: CBOR.decode(block.bytes) });
};

const resolveHandle = (directory: AccountDirectory, url: URL, _scope: RepoScope): Response => {
  const handle = param(url, 'handle');
  const account = directory.byHandle(handle);
  if (account === undefined || account.status === 'deleted') throw new XrpcError(404, 'HandleNotFound', 'Unable to resolve handle');
  return json({ did: account.did });
};

const XRPC: Record<string, (directory: AccountDirectory, url: URL, scope: RepoScope) => Response> = {
  'com.atproto.sync.getRepo': getRepo,
  'com.atproto.sync.listRepos': listRepos,
  'com.atproto.repo.getRecord': getRecord,
  'com.atproto.identity.resolveHandle': resolveHandle,
};

export interface HttpScope {
  /** which repos this server holds (default: every repo) */
  readonly repos?: RepoScope;
  /** the relay's hosts, for listHosts (default: not served) */
  readonly hosts?: () => readonly HostSummary[];
  /** false for a PDS host: no DID documents or export (default true) */
  readonly plc?: boolean;
}

/** Answers a PLC or XRPC GET; `pds` is what DID documents name as the PDS. */
export const handleHttp = (directory: AccountDirectory, request: Request, pds: PdsOf, scope: HttpScope = {}): Response => {
  const url = new URL(request.url);
  if (request.method !== 'GET' && request.method !== 'HEAD') return json({ error: 'InvalidRequest', message: 'GET only' }, 405);
  try {
    if (url.pathname.startsWith('/xrpc/')) {
      const name = url.pathname.slice('/xrpc/'.length);
      if (name === 'com.atproto.sync.listHosts' && scope.hosts !== undefined) return listHostsResponse(scope.hosts(), url);
      const method = XRPC[name];
      if (method === undefined) throw new XrpcError(501, 'MethodNotImplemented', `Method not implemented: ${url.pathname.slice(6)}`);
      return method(directory, url, scope.repos ?? everyRepo(directory));
    }
    if (scope.plc === false) {
      if (url.pathname === '/') return new Response('aqueduct simulated PDS\n', { headers: { 'content-type': 'text/plain' } });
      return json({ error: 'NotFound', message: 'not found' }, 404);
    }
    if (url.pathname === '/export') return exportPage(directory, url, pds);
    const m = DID_PATH.exec(url.pathname);
    if (m !== null) {
      const account = directory.byDid(decodeURIComponent(m[1]!));
      if (account === undefined) return json({ message: `DID not registered: ${m[1]}` }, 404);
      if (account.status === 'deleted') return json({ message: `DID not available: ${account.did}` }, 410);
      return json(didDocument(account, pds));
    }
    if (url.pathname === '/') return new Response('aqueduct firehose simulator\n', { headers: { 'content-type': 'text/plain' } });
    return json({ error: 'NotFound', message: 'not found' }, 404);
  } catch (err) {
    if (err instanceof XrpcError) return xrpcErrorResponse(err);
    return json({ error: 'InternalServerError', message: 'Internal Server Error' }, 500);
  }
};
