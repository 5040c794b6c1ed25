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

export const didDocument = (account: Account, pdsUrl: string): Record<string, unknown> => ({
  '@context': ['https://www.w3.org/ns/did/v1', 'https://w3id.org/security/multikey/v1', 'https://w3id.org/security/suites/secp256k1-2019/v1'],
  id: account.did,
  alsoKnownAs: [`at://${account.handle}`],
  verificationMethod: [{ id: `${account.did}#atproto`, ...account.key.method, controller: account.did }],
  service: [{ id: '#atproto_pds', type: 'AtprotoPersonalDataServer', serviceEndpoint: pdsUrl }],
});

/** Account `index`'s line in the directory's export, created at `createdAtMs` (default: its registration). */
export const exportLine = (directory: AccountDirectory, index: number, pdsUrl: string, createdAtMs = directory.registeredFrom + index): string => {
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
          services: { atproto_pds: { type: 'AtprotoPersonalDataServer', endpoint: pdsUrl } },
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

const exportPage = (directory: AccountDirectory, url: URL, pdsUrl: string): Response => {
  const { from, to } = exportRange(directory, url);
  const lines: string[] = [];
  for (let index = from; index < to; index++) lines.push(exportLine(directory, index, pdsUrl));
  return exportResponse(lines);
};

const repoAccount = (directory: AccountDirectory, did: string): Account => {
  const account = directory.byDid(did);
  if (account === undefined || !account.hasRepo || account.status === 'deleted') {
    throw new XrpcError(404, 'RepoNotFound', `Could not find repo for DID: ${did}`);
  }
  return account;
};

const getRepo = (directory: AccountDirectory, url: URL): Response => {
  const account = repoAccount(directory, param(url, 'did'));
  if (account.status === 'deactivated') throw new XrpcError(400, 'RepoDeactivated', `Repo has been deactivated: ${account.did}`);
  const car = account.repo.exportCar();
  if (car === null) throw new XrpcError(404, 'RepoNotFound', `Could not find repo for DID: ${account.did}`);
  return new Response(car, { headers: { 'content-type': 'application/vnd.ipld.car' } });
};

const listRepos = (directory: AccountDirectory, url: URL): Response => {
  const limitText = url.searchParams.get('limit');
  const limit = limitText === null ? 500 : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new XrpcError(400, 'InvalidRequest', 'limit must be an integer in 1..1000');
  const cursorText = url.searchParams.get('cursor');
  const from = cursorText === null || cursorText === '' ? 0 : Number(cursorText);
  if (!Number.isInteger(from) || from < 0) throw new XrpcError(400, 'InvalidRequest', 'malformed cursor');
  const repos: Record<string, unknown>[] = [];
  let last = -1;
  for (const account of directory.withRepos(from)) {
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

const getRecord = (directory: AccountDirectory, url: URL): Response => {
  const repo = param(url, 'repo');
  const collection = param(url, 'collection');
  const rkey = param(url, 'rkey');
  const found = repo.startsWith('did:') ? directory.byDid(repo) : directory.byHandle(repo);
  if (found === undefined) throw new XrpcError(404, 'RepoNotFound', `Could not find repo: ${repo}`);
  const account = repoAccount(directory, found.did);
  const block = account.repo.getRecord(collection, rkey);
  if (block === undefined) throw new XrpcError(404, 'RecordNotFound', `Could not locate record: at://${account.did}/${collection}/${rkey}`);
  return json({ uri: `at://${account.did}/${collection}/${rkey}`, cid: cidString(block.cid), value: CBOR.decode(block.bytes) });
};

const resolveHandle = (directory: AccountDirectory, url: URL): Response => {
  const handle = param(url, 'handle');
  const account = directory.byHandle(handle);
  if (account === undefined || account.status === 'deleted') throw new XrpcError(404, 'HandleNotFound', 'Unable to resolve handle');
  return json({ did: account.did });
};

const XRPC: Record<string, (directory: AccountDirectory, url: URL) => Response> = {
  'com.atproto.sync.getRepo': getRepo,
  'com.atproto.sync.listRepos': listRepos,
  'com.atproto.repo.getRecord': getRecord,
  'com.atproto.identity.resolveHandle': resolveHandle,
};

/** Answers a PLC or XRPC GET; `pdsUrl` is what DID documents name as the PDS. */
export const handleHttp = (directory: AccountDirectory, request: Request, pdsUrl: string): Response => {
  const url = new URL(request.url);
  if (request.method !== 'GET' && request.method !== 'HEAD') return json({ error: 'InvalidRequest', message: 'GET only' }, 405);
  try {
    if (url.pathname.startsWith('/xrpc/')) {
      const method = XRPC[url.pathname.slice('/xrpc/'.length)];
      if (method === undefined) throw new XrpcError(501, 'MethodNotImplemented', `Method not implemented: ${url.pathname.slice(6)}`);
      return method(directory, url);
    }
    if (url.pathname === '/export') return exportPage(directory, url, pdsUrl);
    const m = DID_PATH.exec(url.pathname);
    if (m !== null) {
      const account = directory.byDid(decodeURIComponent(m[1]!));
      if (account === undefined) return json({ message: `DID not registered: ${m[1]}` }, 404);
      if (account.status === 'deleted') return json({ message: `DID not available: ${account.did}` }, 410);
      return json(didDocument(account, pdsUrl));
    }
    if (url.pathname === '/') return new Response('aqueduct firehose simulator\n', { headers: { 'content-type': 'text/plain' } });
    return json({ error: 'NotFound', message: 'not found' }, 404);
  } catch (err) {
    if (err instanceof XrpcError) return xrpcErrorResponse(err);
    return json({ error: 'InternalServerError', message: 'Internal Server Error' }, 500);
  }
};
