// did-document: a DID document (parsed JSON, untrusted) in, the three facts atproto needs out.
//
// Owns the reading of DID documents. Promises: pure; `unknown` in, narrowed by guards; returns the
// claimed handle (first `at://` alsoKnownAs, lower-cased, null when absent or not a valid handle),
// the PDS endpoint (service `#atproto_pds` of type AtprotoPersonalDataServer) and the signing key
// (verification method `#atproto`, in any form key-forms.ts reads) as its canonical did:key;
// structural damage, or a PDS entry that is present but unusable, throws a DidDocumentError with a
// fixed `reason`. A key that is present but unusable leaves `signingKey` null and says why in
// `signingKeyProblem` (the handle and PDS still count). The handle is only a claim: confirming it
// resolves back to the DID is the caller's job.
import { KeyFormError, readVerificationMethodKey, type KeyFormReason } from './key-forms.ts';
import { ReasonError } from '../lib/reason-error.ts';

export type DidDocumentErrorReason = 'not-an-object' | 'bad-id' | 'bad-field' | 'bad-endpoint';

export class DidDocumentError extends ReasonError<DidDocumentErrorReason> {
  override readonly name = 'DidDocumentError';
}

export interface DidDocumentInfo {
  did: string;
  handle: string | null;
  pdsEndpoint: string | null;
  /** canonical `did:key:z...` (compressed point), for parseDidKey */
  signingKey: string | null;
  /** why an `#atproto` key that is there could not be read; null when it was, or is absent */
  signingKeyProblem: KeyFormReason | null;
}

type JsonObject = Record<string, unknown>;

const DID_RE = /^did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]$/;
const HANDLE_RE =
  /^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/;
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

const readSigningKey = (doc: JsonObject, did: string): Pick<DidDocumentInfo, 'signingKey' | 'signingKeyProblem'> => {
  for (const method of optionalArray(doc, 'verificationMethod')) {
    if (!isObject(method)) throw new DidDocumentError('bad-field', 'verificationMethod entry is not an object');
    if (!matchesId(method.id, did, '#atproto')) continue;
    try {
      return { signingKey: readVerificationMethodKey(method.type, method.publicKeyMultibase).didKey, signingKeyProblem: null };
    } catch (err) {
      if (!(err instanceof KeyFormError)) throw err;
      return { signingKey: null, signingKeyProblem: err.reason };
    }
  }
  return { signingKey: null, signingKeyProblem: null };
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
    ...readSigningKey(doc, did),
  };
};
