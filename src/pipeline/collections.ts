/**
 * The record collections Aqueduct indexes, and how one record becomes one row.
 *
 * `parseRecord(collection, rkey, record)` validates the record against its app.bsky lexicon
 * (schemas from @atcute/bluesky, record key included) and extracts what the tables keep:
 * references to other accounts and records as DIDs and (did, rkey) pairs, which the batch writer
 * turns into actor ids. It never throws: a record that does not match is `{ ok: false, reason }`
 * for the caller to count and skip. Unknown collections are `null` (counted separately).
 */
import * as AppBskyActorProfile from '@atcute/bluesky/types/app/actor/profile';
import * as AppBskyFeedGenerator from '@atcute/bluesky/types/app/feed/generator';
import * as AppBskyFeedLike from '@atcute/bluesky/types/app/feed/like';
import * as AppBskyFeedPost from '@atcute/bluesky/types/app/feed/post';
import * as AppBskyFeedPostgate from '@atcute/bluesky/types/app/feed/postgate';
import * as AppBskyFeedRepost from '@atcute/bluesky/types/app/feed/repost';
import * as AppBskyFeedThreadgate from '@atcute/bluesky/types/app/feed/threadgate';
import * as AppBskyGraphBlock from '@atcute/bluesky/types/app/graph/block';
import * as AppBskyGraphFollow from '@atcute/bluesky/types/app/graph/follow';
import * as AppBskyGraphList from '@atcute/bluesky/types/app/graph/list';
import * as AppBskyGraphListblock from '@atcute/bluesky/types/app/graph/listblock';
import * as AppBskyGraphListitem from '@atcute/bluesky/types/app/graph/listitem';
import * as AppBskyGraphStarterpack from '@atcute/bluesky/types/app/graph/starterpack';
import * as AppBskyLabelerService from '@atcute/bluesky/types/app/labeler/service';
import { is, type BaseSchema } from '@atcute/lexicons/validations';
import { isRecordKey } from '../lib/syntax.ts';
import { parseAtUri, type RecordRef } from './at-uri.ts';

export type HotFamily = 'posts' | 'likes' | 'reposts' | 'follows' | 'blocks';
export type DocumentTable =
  | 'profiles'
  | 'lists'
  | 'list_items'
  | 'list_blocks'
  | 'feed_generators'
  | 'threadgates'
  | 'postgates'
  | 'starter_packs'
  | 'labelers';
export type Table = HotFamily | DocumentTable;

/** Collections a like can point at, as stored in `likes.subject_collection`. */
export const SUBJECT_COLLECTIONS: Readonly<Record<string, number>> = {
  'app.bsky.feed.post': 1,
  'app.bsky.feed.generator': 2,
  'app.bsky.graph.list': 3,
  'app.bsky.labeler.service': 4,
  'app.bsky.graph.starterpack': 5,
};
export const POST_COLLECTION = 'app.bsky.feed.post';

export interface PostRow {
  readonly table: 'posts';
  readonly createdAt: string;
  readonly text: string;
  readonly langs: readonly string[] | null;
  readonly replyRoot: RecordRef | null;
  readonly replyParent: RecordRef | null;
  /** The CIDs the reply's strong refs name. */
  readonly replyRootCid: string | null;
  readonly replyParentCid: string | null;
  readonly quote: RecordRef | null;
  readonly embed: string | null;
  readonly facets: string | null;
  readonly labels: readonly string[] | null;
  readonly tags: readonly string[] | null;
}
export interface SubjectRecordRow {
  readonly table: 'likes' | 'reposts';
  readonly createdAt: string;
  readonly subject: RecordRef;
  readonly subjectCollection: number;
}
export interface SubjectActorRow {
  readonly table: 'follows' | 'blocks';
  readonly createdAt: string;
  readonly subjectDid: string;
}
export interface DocumentRow {
  readonly table: DocumentTable;
  readonly createdAt: string | null;
  readonly record: string;
  readonly ref: RecordRef | null;
  readonly subjectDid: string | null;
}
export type Row = PostRow | SubjectRecordRow | SubjectActorRow | DocumentRow;

export type ParseResult = { readonly ok: true; readonly row: Row } | { readonly ok: false; readonly reason: string };

interface CollectionSpec {
  readonly table: Table;
  readonly schema: BaseSchema & { readonly key: BaseSchema };
  /** `createdAt` is the record's createdAt as parseRecord normalized it (null when absent). */
  readonly toRow: (record: Record<string, unknown>, json: () => string, createdAt: string | null) => Row | string;
}

const document =
  (table: DocumentTable, refs: (record: Record<string, unknown>) => { ref?: RecordRef | null | string; subjectDid?: string | null } = () => ({})) =>
  (record: Record<string, unknown>, json: () => string, createdAt: string | null): Row | string => {
    const { ref = null, subjectDid = null } = refs(record);
    if (typeof ref === 'string') return ref;
    return { table, createdAt, record: json(), ref, subjectDid };
  };

const COLLECTIONS: Readonly<Record<string, CollectionSpec>> = {
  'app.bsky.feed.post': { table: 'posts', schema: AppBskyFeedPost.mainSchema, toRow: toPostRow },
  'app.bsky.feed.like': { table: 'likes', schema: AppBskyFeedLike.mainSchema, toRow: (record, _json, createdAt) => toSubjectRecordRow('likes', record, createdAt) },
  'app.bsky.feed.repost': { table: 'reposts', schema: AppBskyFeedRepost.mainSchema, toRow: (record, _json, createdAt) => toSubjectRecordRow('reposts', record, createdAt) },
  'app.bsky.graph.follow': { table: 'follows', schema: AppBskyGraphFollow.mainSchema, toRow: (record, _json, createdAt) => toSubjectActorRow('follows', record, createdAt) },
  'app.bsky.graph.block': { table: 'blocks', schema: AppBskyGraphBlock.mainSchema, toRow: (record, _json, createdAt) => toSubjectActorRow('blocks', record, createdAt) },
  'app.bsky.actor.profile': { table: 'profiles', schema: AppBskyActorProfile.mainSchema, toRow: document('profiles') },
  'app.bsky.graph.list': { table: 'lists', schema: AppBskyGraphList.mainSchema, toRow: document('lists') },
  'app.bsky.graph.listitem': {
    table: 'list_items',
    schema: AppBskyGraphListitem.mainSchema,
    toRow: document('list_items', (record) => ({ ref: refOrReason(record.list, 'app.bsky.graph.list'), subjectDid: String(record.subject) })),
  },
  'app.bsky.graph.listblock': {
    table: 'list_blocks',
    schema: AppBskyGraphListblock.mainSchema,
    toRow: document('list_blocks', (record) => ({ ref: refOrReason(record.subject, 'app.bsky.graph.list') })),
  },
  'app.bsky.feed.generator': { table: 'feed_generators', schema: AppBskyFeedGenerator.mainSchema, toRow: document('feed_generators') },
  'app.bsky.feed.threadgate': {
    table: 'threadgates',
    schema: AppBskyFeedThreadgate.mainSchema,
    toRow: document('threadgates', (record) => ({ ref: refOrReason(record.post, POST_COLLECTION) })),
  },
  'app.bsky.feed.postgate': {
    table: 'postgates',
    schema: AppBskyFeedPostgate.mainSchema,
    toRow: document('postgates', (record) => ({ ref: refOrReason(record.post, POST_COLLECTION) })),
  },
  'app.bsky.graph.starterpack': {
    table: 'starter_packs',
    schema: AppBskyGraphStarterpack.mainSchema,
    toRow: document('starter_packs', (record) => ({ ref: refOrReason(record.list, 'app.bsky.graph.list') })),
  },
  'app.bsky.labeler.service': { table: 'labelers', schema: AppBskyLabelerService.mainSchema, toRow: document('labelers') },
};

/** Collections whose key type is `any`: the library's schema for it is a bare string(), so the record-key syntax is checked here. */
const ANY_KEY: ReadonlySet<string> = new Set(
  Object.entries(COLLECTIONS)
    .filter(([, spec]) => spec.schema.key.type === 'string' && !(spec.schema.key as { format?: unknown }).format)
    .map(([collection]) => collection),
);

export const TABLES: readonly Table[] = [...new Set(Object.values(COLLECTIONS).map((spec) => spec.table))];

const COLLECTION_OF_TABLE = new Map<Table, string>(Object.entries(COLLECTIONS).map(([collection, spec]) => [spec.table, collection]));

export function tableOf(collection: string): Table | null {
  return COLLECTIONS[collection]?.table ?? null;
}

export function collectionOfTable(table: Table): string {
  const collection = COLLECTION_OF_TABLE.get(table);
  if (collection === undefined) throw new Error(`no collection for table ${table}`);
  return collection;
}

/** null: not a collection Aqueduct indexes. */
export function parseRecord(collection: string, rkey: string, record: unknown): ParseResult | null {
  const spec = COLLECTIONS[collection];
  if (!spec) return null;
  if (!is(spec.schema.key, rkey) || (ANY_KEY.has(collection) && !isRecordKey(rkey))) return { ok: false, reason: 'bad-rkey' };
  if (!is(spec.schema, record)) return { ok: false, reason: 'lexicon' };
  const fields = record as Record<string, unknown>;
  const createdAt = fields.createdAt === undefined ? null : normalizeDatetime(fields.createdAt);
  if (fields.createdAt !== undefined && createdAt === null) return { ok: false, reason: 'bad-datetime' };
  let json: string | null = null;
  const row = spec.toRow(fields, () => (json ??= JSON.stringify(record)), createdAt);
  if (typeof row === 'string') return { ok: false, reason: row };
  // PostgreSQL text and jsonb cannot hold U+0000; such a record would fail its whole batch.
  if (containsNul(row)) return { ok: false, reason: 'nul-character' };
  return { ok: true, row };
}

/**
 * A lexicon datetime as PostgreSQL will store it, or null when it is not a real instant between
 * the years 1 and 9999 (the lexicon format admits strings that are not).
 */
export function normalizeDatetime(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const time = Date.parse(value);
  if (Number.isNaN(time) || time < MIN_TIME || time > MAX_TIME) return null;
  return new Date(time).toISOString();
}
const MIN_TIME = -62_135_596_800_000; // 0001-01-01T00:00:00Z
const MAX_TIME = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

const JSON_FIELDS: ReadonlySet<string> = new Set(['record', 'embed', 'facets']);

function containsNul(row: Row): boolean {
  // for...in rather than Object.entries: no array of pairs per record on the hot path
  for (const field in row) {
    const value: unknown = row[field as keyof Row];
    if (typeof value === 'string') {
      if (value.includes('\0') || (JSON_FIELDS.has(field) && value.includes('\\u0000'))) return true;
    } else if (Array.isArray(value) && value.some((item) => typeof item === 'string' && item.includes('\0'))) {
      return true;
    }
  }
  return false;
}

function toPostRow(record: Record<string, unknown>, _json: () => string, createdAt: string | null): Row | string {
  const post = record as unknown as AppBskyFeedPost.Main;
  let replyRoot: RecordRef | null = null;
  let replyParent: RecordRef | null = null;
  if (post.reply) {
    replyRoot = parseAtUri(post.reply.root.uri);
    replyParent = parseAtUri(post.reply.parent.uri);
    if (!replyRoot || !replyParent) return 'bad-reference';
  }
  let quote: RecordRef | null = null;
  const embed = post.embed as { $type?: string; record?: { uri?: string; record?: { uri?: string } } } | undefined;
  const quoted =
    embed?.$type === 'app.bsky.embed.record'
      ? embed.record?.uri
      : embed?.$type === 'app.bsky.embed.recordWithMedia'
        ? embed.record?.record?.uri
        : undefined;
  if (quoted !== undefined) {
    quote = parseAtUri(quoted);
    if (!quote) return 'bad-reference';
  }
  const labels = post.labels?.$type === 'com.atproto.label.defs#selfLabels' ? post.labels.values.map((label) => label.val) : null;
  return {
    table: 'posts',
    createdAt: createdAt ?? post.createdAt,
    text: post.text,
    langs: post.langs?.length ? post.langs : null,
    replyRoot,
    replyParent,
    replyRootCid: post.reply?.root.cid ?? null,
    replyParentCid: post.reply?.parent.cid ?? null,
    quote,
    embed: post.embed ? JSON.stringify(post.embed) : null,
    facets: post.facets?.length ? JSON.stringify(post.facets) : null,
    labels: labels?.length ? labels : null,
    tags: post.tags?.length ? post.tags : null,
  };
}

function toSubjectRecordRow(table: 'likes' | 'reposts', record: Record<string, unknown>, createdAt: string | null): Row | string {
  const subject = parseAtUri((record as unknown as AppBskyFeedLike.Main).subject.uri);
  if (!subject) return 'bad-reference';
  const subjectCollection = SUBJECT_COLLECTIONS[subject.collection];
  if (subjectCollection === undefined || (table === 'reposts' && subject.collection !== POST_COLLECTION)) return 'unsupported-subject';
  return { table, createdAt: createdAt ?? '', subject, subjectCollection };
}

function toSubjectActorRow(table: 'follows' | 'blocks', record: Record<string, unknown>, createdAt: string | null): Row {
  return { table, createdAt: createdAt ?? '', subjectDid: String(record.subject) };
}

function refOrReason(uri: unknown, collection: string): RecordRef | string {
  const ref = typeof uri === 'string' ? parseAtUri(uri) : null;
  if (!ref) return 'bad-reference';
  return ref.collection === collection ? ref : 'unsupported-subject';
}
