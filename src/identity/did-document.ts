// did-document: a DID document (parsed JSON, untrusted) in, the three facts atproto needs out.
//
// Owns the reading of DID documents. Promises: pure; `unknown` in, narrowed by guards; returns the
// claimed handle (first `at://` alsoKnownAs, lower-cased, null when absent or not a valid handle),
// the PDS endpoint (service `#atproto_pds` of type AtprotoPersonalDataServer) and the signing key
// (verification method `#atproto`) as a multikey string; structural damage, or an atproto entry
// that is present but unusable, throws a DidDocumentError with a fixed `reason`. The handle is
// only a claim: confirming it resolves back to the DID is the caller's job.
import { fromBase58Btc, toBase58Btc } from '@atcute/multibase';
import { ReasonError } from '../lib/reason-error.ts';

export type DidDocumentErrorReason = 'not-an-object' | 'bad-id' | 'bad-field' | 'bad-key' | 'bad-endpoint';

export class DidDocumentError extends ReasonError<DidDocumentErrorReason> {
  override readonly name = 'DidDocumentError';
}

export interface DidDocumentInfo {
  did: string;
  handle: string | null;
  pdsEndpoint: string | null;
  /** multikey (`z...`), for parseDidKey */
  signingKey: string | null;
}

type JsonObject = Record<string, unknown>;

const DID_RE = /^did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]$/;
const HANDLE_RE =
  /^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/;
// legacy verification method types carry a raw point; atproto prefixes it with a multicodec
const LEGACY_KEY_CODECS = new Map<string, Uint8Array>([
  ['EcdsaSecp256k1VerificationKey2019', Uint8Array.from([0xe7, 0x01])],
  ['EcdsaSecp256r1VerificationKey2019', Uint8Array.from([0x80, 0x24])],
]);

const isObject = (value: unknown): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const optionalArray = (doc: JsonObject, field: string): unknown[] => {
  const value = doc[field];
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new DidDocumentError('bad-field', `${field} is not an array`);
  return value;
};

const matchesId = (id: unknown, did: string, fragment: string): boolean =>
  id === fragment || id === did + fragment;

const readHandle = (doc: JsonObject): string | null => {
  for (const aka of optionalArray(doc, 'alsoKnownAs')) {
    if (typeof aka !== 'string') throw new DidDocumentError('bad-field', 'alsoKnownAs entry is not a string');
    if (!aka.startsWith('at://')) continue;
    const handle = aka.slice(5);
    return handle.length <= 253 && HANDLE_RE.test(handle) ? handle.toLowerCase() : null;
  }
  return null;
};

const readPdsEndpoint = (doc: JsonObject, did: string): string | null => {
  for (const service of optionalArray(doc, 'service')) {
    if (!isObject(service)) throw new DidDocumentError('bad-field', 'service entry is not an object');
    if (!matchesId(service.id, did, '#atproto_pds')) continue;
    if (service.type !== 'AtprotoPersonalDataServer') continue;
    const endpoint = service.serviceEndpoint;
    if (typeof endpoint !== 'string') throw new DidDocumentError('bad-endpoint', 'endpoint is not a string');
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch (err) {
      throw new DidDocumentError('bad-endpoint', 'endpoint is not a URL', { cause: err });
    }
    if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.username || url.password) {
      throw new DidDocumentError('bad-endpoint', 'endpoint is not a plain http(s) URL');
    }
    return endpoint.replace(/\/+$/, '');
  }
  return null;
};

const toMultikey = (type: string, publicKeyMultibase: string): string => {
  const codec = LEGACY_KEY_CODECS.get(type);
  if (codec === undefined) return publicKeyMultibase;
  let raw: Uint8Array;
  try {
    raw = fromBase58Btc(publicKeyMultibase.slice(1));
  } catch (err) {
    throw new DidDocumentError('bad-key', 'publicKeyMultibase is not base58btc', { cause: err });
  }
  const bytes = new Uint8Array(codec.length + raw.length);
  bytes.set(codec, 0);
  bytes.set(raw, codec.length);
  return `z${toBase58Btc(bytes)}`;
};

const readSigningKey = (doc: JsonObject, did: string): string | null => {
  for (const method of optionalArray(doc, 'verificationMethod')) {
    if (!isObject(method)) throw new DidDocumentError('bad-field', 'verificationMethod entry is not an object');
    if (!matchesId(method.id, did, '#atproto')) continue;
    const { type, publicKeyMultibase } = method;
    if (typeof type !== 'string' || (type !== 'Multikey' && !LEGACY_KEY_CODECS.has(type))) {
      throw new DidDocumentError('bad-key', 'unsupported verification method type');
    }
    if (typeof publicKeyMultibase !== 'string' || publicKeyMultibase.length < 2 || publicKeyMultibase[0] !== 'z') {
      throw new DidDocumentError('bad-key', 'publicKeyMultibase is not a base58btc string');
    }
    return toMultikey(type, publicKeyMultibase);
  }
  return null;
};

/** Reads handle, PDS endpoint and signing key out of a DID document. */
export const parseDidDocument = (doc: unknown): DidDocumentInfo => {
  if (!isObject(doc)) throw new DidDocumentError('not-an-object', 'DID document is not an object');
  const did = doc.id;
  if (typeof did !== 'string' || did.length > 2048 || !DID_RE.test(did)) {
    throw new DidDocumentError('bad-id', 'DID document id is not a DID');
  }
  return {
    did,
    handle: readHandle(doc),
    pdsEndpoint: readPdsEndpoint(doc, did),
    signingKey: readSigningKey(doc, did),
  };
};
