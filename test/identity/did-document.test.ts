import { describe, expect, test } from 'bun:test';

import { DidDocumentError, parseDidDocument, type DidDocumentErrorReason } from '../../src/identity/did-document.ts';

const DID = 'did:plc:ewvi7nxzyoun6zhxrhs64oiz';
const KEY = 'zQ3shqwJEJyMBsBXCWyCBpUBMqxcon9oHB7mCvx4sSpMdLJwc';
const DID_KEY = `did:key:${KEY}`;

const doc = (patch: Record<string, unknown> = {}): Record<string, unknown> => {
  const base: Record<string, unknown> = {
    '@context': ['https://www.w3.org/ns/did/v1', 'https://w3id.org/security/multikey/v1'],
    id: DID,
    alsoKnownAs: ['at://Alice.Example.com'],
    verificationMethod: [{ id: `${DID}#atproto`, type: 'Multikey', controller: DID, publicKeyMultibase: KEY }],
    service: [{ id: '#atproto_pds', type: 'AtprotoPersonalDataServer', serviceEndpoint: 'https://pds.example.com/' }],
  };
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) delete base[k];
    else base[k] = v;
  }
  return base;
};

describe('parseDidDocument: valid documents', () => {
  const cases: [string, unknown, unknown][] = [
    [
      'a PLC document',
      doc(),
      { did: DID, handle: 'alice.example.com', pdsEndpoint: 'https://pds.example.com', signingKey: DID_KEY, signingKeyProblem: null },
    ],
    ['only an id', { id: DID }, { did: DID, handle: null, pdsEndpoint: null, signingKey: null, signingKeyProblem: null }],
    [
      'first at:// alias wins, others skipped',
      doc({ alsoKnownAs: ['https://alice.example', 'at://first.test', 'at://second.test'] }),
      { handle: 'first.test' },
    ],
    ['an invalid handle is null', doc({ alsoKnownAs: ['at://not a handle'] }), { handle: null }],
    ['a handle without a dot is null', doc({ alsoKnownAs: ['at://localhost'] }), { handle: null }],
    [
      'relative and absolute ids both match',
      doc({
        verificationMethod: [{ id: '#atproto', type: 'Multikey', controller: DID, publicKeyMultibase: KEY }],
        service: [{ id: `${DID}#atproto_pds`, type: 'AtprotoPersonalDataServer', serviceEndpoint: 'http://localhost:2583' }],
      }),
      { signingKey: DID_KEY, pdsEndpoint: 'http://localhost:2583' },
    ],
    [
      'other keys and services are ignored',
      doc({
        verificationMethod: [{ id: '#other', type: 'Weird' }],
        service: [
          { id: '#atproto_pds', type: 'SomethingElse', serviceEndpoint: 'not a url' },
          { id: '#bsky_fg', type: 'BskyFeedGenerator', serviceEndpoint: { complex: true } },
        ],
      }),
      { signingKey: null, signingKeyProblem: null, pdsEndpoint: null },
    ],
    [
      // the same key as KEY, in the legacy raw-point form of the interop fixtures
      'a legacy EcdsaSecp256k1VerificationKey2019 key becomes a did:key',
      doc({
        verificationMethod: [
          {
            id: '#atproto',
            type: 'EcdsaSecp256k1VerificationKey2019',
            controller: DID,
            publicKeyMultibase: 'z25z9DTpsiYYJKGsWmSPJK2NFN8PcJtZig12K59UgW7q5t',
          },
        ],
      }),
      { signingKey: DID_KEY },
    ],
    ['a did:web document', { id: 'did:web:example.com' }, { did: 'did:web:example.com' }],
  ];
  test.each(cases)('%s', (_name, input, expected) => {
    expect(parseDidDocument(input)).toMatchObject(expected as object);
  });
});

describe('parseDidDocument: malformed documents', () => {
  const cases: [string, unknown, DidDocumentErrorReason][] = [
    ['null', null, 'not-an-object'],
    ['an array', [doc()], 'not-an-object'],
    ['a string', JSON.stringify(doc()), 'not-an-object'],
    ['id missing', doc({ id: undefined }), 'bad-id'],
    ['id a number', doc({ id: 5 }), 'bad-id'],
    ['id not a DID', doc({ id: 'alice.example.com' }), 'bad-id'],
    ['id with an upper-case method', doc({ id: 'did:PLC:abc' }), 'bad-id'],
    ['alsoKnownAs a string', doc({ alsoKnownAs: 'at://alice.test' }), 'bad-field'],
    ['alsoKnownAs entry a number', doc({ alsoKnownAs: [1] }), 'bad-field'],
    ['verificationMethod an object', doc({ verificationMethod: {} }), 'bad-field'],
    ['verificationMethod entry a string', doc({ verificationMethod: ['#atproto'] }), 'bad-field'],
    ['service a string', doc({ service: 'https://pds' }), 'bad-field'],
    ['service entry null', doc({ service: [null] }), 'bad-field'],
    [
      '#atproto_pds endpoint an object',
      doc({ service: [{ id: '#atproto_pds', type: 'AtprotoPersonalDataServer', serviceEndpoint: { uri: 'x' } }] }),
      'bad-endpoint',
    ],
    [
      '#atproto_pds endpoint not a URL',
      doc({ service: [{ id: '#atproto_pds', type: 'AtprotoPersonalDataServer', serviceEndpoint: 'pds.example.com' }] }),
      'bad-endpoint',
    ],
    [
      '#atproto_pds endpoint not http(s)',
      doc({ service: [{ id: '#atproto_pds', type: 'AtprotoPersonalDataServer', serviceEndpoint: 'ftp://pds.example.com' }] }),
      'bad-endpoint',
    ],
    [
      '#atproto_pds endpoint with credentials',
      doc({ service: [{ id: '#atproto_pds', type: 'AtprotoPersonalDataServer', serviceEndpoint: 'https://u:p@pds.example.com' }] }),
      'bad-endpoint',
    ],
  ];
  test.each(cases)('%s -> %s', (_name, input, reason) => {
    let caught: unknown;
    try {
      parseDidDocument(input);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(DidDocumentError);
    expect((caught as DidDocumentError).reason).toBe(reason);
  });
});

describe('parseDidDocument: an unusable #atproto key leaves the rest of the document', () => {
  const method = (fields: Record<string, unknown>) => doc({ verificationMethod: [{ id: '#atproto', controller: DID, ...fields }] });
  const cases: [string, unknown, string][] = [
    ['without publicKeyMultibase', method({ type: 'Multikey' }), 'multikey:missing-key'],
    ['of an unknown multibase', method({ type: 'Multikey', publicKeyMultibase: 'xAAAA' }), 'multikey:bad-multibase'],
    ['of an unknown type', method({ type: 'JsonWebKey2020', publicKeyMultibase: KEY }), 'jwk:unsupported-type'],
    ['type toString (no prototype lookups)', method({ type: 'toString', publicKeyMultibase: KEY }), 'other-type:unsupported-type'],
    ['legacy, with invalid base58', method({ type: 'EcdsaSecp256k1VerificationKey2019', publicKeyMultibase: 'z0OIl' }), 'legacy-secp256k1:bad-multibase'],
  ];
  test.each(cases)('%s -> %s', (_name, input, problem) => {
    expect(parseDidDocument(input)).toMatchObject({ handle: 'alice.example.com', pdsEndpoint: 'https://pds.example.com', signingKey: null, signingKeyProblem: problem });
  });
});
