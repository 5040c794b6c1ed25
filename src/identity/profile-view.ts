// profile-view: what views need from a stored profile record, and avatar/banner URLs from
// IMAGE_URL_TEMPLATE.
//
// Owns no state. Promises: pure; `profileFields` takes the stored record (jsonb, untrusted shape)
// and returns display name, description, avatar and banner blob CIDs and the pinned post, each
// null when absent or malformed. `imageUrl` fills `{kind}`, `{did}` and `{cid}` of the template
// (default: the public CDN form); the template `pds` means the PDS's own getBlob URL instead.
// `imageUrlTemplateProblem` is the validation config.ts runs on IMAGE_URL_TEMPLATE.
import { isObject } from '../lib/is-object.ts';

export const DEFAULT_IMAGE_URL_TEMPLATE = 'https://cdn.bsky.app/img/{kind}/plain/{did}/{cid}@jpeg';
export const PDS_IMAGE_URLS = 'pds';

export type ImageKind = 'avatar' | 'banner' | 'feed_thumbnail' | 'feed_fullsize';

export interface ProfileFields {
  displayName: string | null;
  description: string | null;
  avatarCid: string | null;
  bannerCid: string | null;
  pinnedPost: { uri: string; cid: string } | null;
}

const CID_RE = /^b[a-z2-7]{8,}$/;
const DID_RE = /^did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]$/;

const text = (value: unknown): string | null => (typeof value === 'string' ? value : null);

/** The CID of a blob in its JSON form ({ref: {$link}}), or of a legacy blob ({cid}). */
const blobCid = (value: unknown): string | null => {
  if (!isObject(value)) return null;
  const ref = value.ref;
  const cid = isObject(ref) ? ref.$link : value.cid;
  return typeof cid === 'string' && CID_RE.test(cid) ? cid : null;
};

export const profileFields = (record: unknown): ProfileFields => {
  if (!isObject(record)) return { displayName: null, description: null, avatarCid: null, bannerCid: null, pinnedPost: null };
  const pinned = record.pinnedPost;
  const pinnedPost =
    isObject(pinned) && typeof pinned.uri === 'string' && typeof pinned.cid === 'string' ? { uri: pinned.uri, cid: pinned.cid } : null;
  return {
    displayName: text(record.displayName),
    description: text(record.description),
    avatarCid: blobCid(record.avatar),
    bannerCid: blobCid(record.banner),
    pinnedPost,
  };
};

/** null when the template is usable, else what is wrong with it (for ConfigError). */
export const imageUrlTemplateProblem = (template: string): string | null => {
  if (template === PDS_IMAGE_URLS) return null;
  let url: URL;
  try {
    url = new URL(template.replaceAll('{', '').replaceAll('}', ''));
  } catch {
    return `expected an http(s) URL template with {did} and {cid} (and optionally {kind}), or "${PDS_IMAGE_URLS}"`;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'expected an http(s) URL template';
  if (!template.includes('{did}') || !template.includes('{cid}')) return 'the template must contain {did} and {cid}';
  return null;
};

export interface ImageRef {
  kind: ImageKind;
  did: string;
  cid: string;
  /** needed for the `pds` template */
  pdsEndpoint?: string | null;
}

/** The URL of an image, or null when the DID or CID is malformed or no PDS is known for `pds`. */
export const imageUrl = (template: string, image: ImageRef): string | null => {
  if (!DID_RE.test(image.did) || !CID_RE.test(image.cid)) return null;
  if (template === PDS_IMAGE_URLS) {
    if (!image.pdsEndpoint) return null;
    const url = new URL('/xrpc/com.atproto.sync.getBlob', image.pdsEndpoint);
    url.searchParams.set('did', image.did);
    url.searchParams.set('cid', image.cid);
    return url.href;
  }
  return template.replaceAll('{kind}', image.kind).replaceAll('{did}', image.did).replaceAll('{cid}', image.cid);
};
