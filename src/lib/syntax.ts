/**
 * The atproto string syntaxes (https://atproto.com/specs/...), as Aqueduct checks what arrives from
 * the network and from clients.
 *
 * Promises: pure predicates, `unknown` in; each one accepts exactly the valid and rejects exactly
 * the invalid vectors of the atproto interop tests (test/interop/syntax.test.ts pins that). Where
 * @atcute/lexicons/syntax (the library our record validation runs on) already does so, its check is
 * re-exported here rather than rewritten, and the interop tests catch an upgrade that changes it.
 * `isLanguage` is hand-written: the library's BCP 47 pattern takes 4-letter and upper-case primary
 * subtags ("jaja", "JA") and repeated variants or singletons, refuses an upper-case private-use "X",
 * and the vectors say otherwise. Stricter policies (handle TLDs we will not resolve, storable
 * datetimes) are their callers' business, not this module's.
 */
import {
  isActorIdentifier,
  isDid as isDidSyntax,
  isHandle as isHandleSyntax,
  isNsid as isNsidSyntax,
  isRecordKey as isRecordKeySyntax,
  isResourceUri,
  isTid as isTidSyntax,
} from '@atcute/lexicons/syntax';

/** `did:<method>:<id>`, at most 2048 characters. */
export const isDid = (value: unknown): boolean => isDidSyntax(value);

/** A domain name of two or more labels whose last label starts with a letter; case-insensitive. */
export const isHandle = (value: unknown): boolean => isHandleSyntax(value);

/** A DID or a handle. */
export const isAtIdentifier = (value: unknown): boolean => isActorIdentifier(value);

/** A reversed domain name and a name segment, at most 317 characters. */
export const isNsid = (value: unknown): boolean => isNsidSyntax(value);

/** 1 to 512 of `A-Za-z0-9 . - _ : ~`, and neither "." nor "..". */
export const isRecordKey = (value: unknown): boolean => isRecordKeySyntax(value);

/** 13 characters of sortable base32, the first one without the high bit. */
export const isTid = (value: unknown): boolean => isTidSyntax(value);

/** `at://<did or handle>[/<nsid>[/<record key>]][#/<fragment>]`, at most 8 KiB. */
export const isAtUri = (value: unknown): boolean => isResourceUri(value);

// RFC 5646 §2.1 with a lower-case 2-3 letter primary language (the atproto "naive parser" rule).
const LANGTAG_RE =
  /^[a-z]{2,3}(?:-[A-Za-z]{3}){0,3}(?:-[A-Za-z]{4})?(?:-(?:[A-Za-z]{2}|[0-9]{3}))?(?:-(?:[A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*(?:-[0-9A-WY-Za-wy-z](?:-[A-Za-z0-9]{2,8})+)*(?:-[xX](?:-[A-Za-z0-9]{1,8})+)?$/;
const PRIVATE_USE_RE = /^[xX](?:-[A-Za-z0-9]{1,8})+$/;
const VARIANT_RE = /^(?:[a-z0-9]{5,8}|[0-9][a-z0-9]{3})$/;
const GRANDFATHERED: ReadonlySet<string> = new Set([
  'en-GB-oed', 'i-ami', 'i-bnn', 'i-default', 'i-enochian', 'i-hak', 'i-klingon', 'i-lux', 'i-mingo', 'i-navajo',
  'i-pwn', 'i-tao', 'i-tay', 'i-tsu', 'sgn-BE-FR', 'sgn-BE-NL', 'sgn-CH-DE', 'art-lojban', 'cel-gaulish', 'no-bok',
  'no-nyn', 'zh-guoyu', 'zh-hakka', 'zh-min', 'zh-min-nan', 'zh-xiang',
]);
const MAX_LANGUAGE_LENGTH = 128;

/**
 * A BCP 47 language tag: well-formed (RFC 5646 §2.1) and valid in the sense of §2.2.9, i.e. no
 * variant and no extension singleton appears twice (compared case-insensitively).
 */
export const isLanguage = (value: unknown): boolean => {
  if (typeof value !== 'string' || value.length < 2 || value.length > MAX_LANGUAGE_LENGTH) return false;
  if (GRANDFATHERED.has(value) || PRIVATE_USE_RE.test(value)) return true;
  if (!LANGTAG_RE.test(value)) return false;
  const subtags = value.toLowerCase().split('-');
  const privateUse = subtags.indexOf('x');
  const end = privateUse === -1 ? subtags.length : privateUse;
  const variants = new Set<string>();
  const singletons = new Set<string>();
  for (let i = 1; i < end; i++) {
    const subtag = subtags[i]!;
    if (subtag.length === 1) {
      if (singletons.has(subtag)) return false;
      singletons.add(subtag);
    } else if (singletons.size === 0 && VARIANT_RE.test(subtag)) {
      if (variants.has(subtag)) return false;
      variants.add(subtag);
    }
  }
  return true;
};
