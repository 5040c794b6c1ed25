/**
 * Hydration: from the keys of a page (posts, actors, lists, generators...) to everything their
 * views need, in a constant number of queries.
 *
 * `hydrate(request, viewer)` runs at most three rounds of post loading (the page, then what it
 * quotes and replies to, then what those quote), then, in parallel, the actors of every post and
 * reference, the viewer's relations to them, blocks among them and the viewer's likes and reposts,
 * then the document records (generators, lists, starter packs, labelers, postgates) in one
 * statement: at most nine statements whatever the page size. The result is a plain
 * `HydrationState` that the pure view builders in `views.ts` read; nothing here shapes JSON.
 */
import { parseAtUri } from '../pipeline/at-uri.ts';
import {
  keyOf,
  loadActors,
  loadAssociated,
  loadBlockPairs,
  loadDocuments,
  loadPosts,
  loadPostViewer,
  loadRelations,
  type ActorRow,
  type AssociatedRow,
  type Db,
  type DocumentRow,
  type DocumentTable,
  type PostRow,
  type RecordKey,
} from './loaders.ts';

export interface ViewerRelation {
  following?: string;
  followedBy?: string;
  blocking?: string;
  blockedBy?: boolean;
  /** the block list through which the viewer blocks this actor */
  blockingByList?: RecordKey;
}

export interface HydrationState {
  readonly viewer: number | null;
  readonly actors: ReadonlyMap<number, ActorRow>;
  readonly posts: ReadonlyMap<string, PostRow>;
  /** by `docKey(table, actorId, rkey)` */
  readonly documents: ReadonlyMap<string, DocumentRow>;
  /** post key -> rkey of the viewer's like / repost */
  readonly likes: ReadonlyMap<string, string>;
  readonly reposts: ReadonlyMap<string, string>;
  readonly relations: ReadonlyMap<number, ViewerRelation>;
  /** `blocker>blocked` among the hydrated actors */
  readonly blocks: ReadonlySet<string>;
  readonly associated: ReadonlyMap<number, AssociatedRow>;
}

export interface DocumentKey extends RecordKey {
  readonly table: DocumentTable;
}

export interface HydrateRequest {
  readonly posts?: readonly RecordKey[];
  readonly actors?: readonly number[];
  readonly documents?: readonly DocumentKey[];
  /** load each post's reply parent and root too (feeds show them) */
  readonly replyContext?: boolean;
  /** load `associated` counts for these actors (profileViewDetailed) */
  readonly detailedActors?: readonly number[];
}

export const docKey = (table: DocumentTable, actorId: number, rkey: string): string => `${table}:${actorId}/${rkey}`;

/** What a record embed points at, as a (collection, actor, rkey) reference. */
export interface EmbedRef {
  readonly uri: string;
  readonly collection: string;
  readonly actorId: number;
  readonly rkey: string;
}

export const EMBED_DOCUMENT_TABLES: Readonly<Record<string, DocumentTable>> = {
  'app.bsky.feed.generator': 'feed_generators',
  'app.bsky.graph.list': 'lists',
  'app.bsky.graph.starterpack': 'starter_packs',
  'app.bsky.labeler.service': 'labelers',
};

/** The record a post's embed quotes (record or recordWithMedia), with the stored actor id. */
export function embedRefOf(post: PostRow): EmbedRef | null {
  if (post.quoteActorId === null || post.quoteRkey === null) return null;
  const embed = post.embed as { $type?: unknown; record?: { uri?: unknown; record?: { uri?: unknown } } } | null;
  const uri = embed?.$type === 'app.bsky.embed.recordWithMedia' ? embed.record?.record?.uri : embed?.record?.uri;
  if (typeof uri !== 'string') return null;
  const ref = parseAtUri(uri);
  if (!ref) return null;
  return { uri, collection: ref.collection, actorId: post.quoteActorId, rkey: post.quoteRkey };
}

const MAX_POST_ROUNDS = 3;

export class Hydrator {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  async hydrate(request: HydrateRequest, viewer: number | null): Promise<HydrationState> {
    const db = this.#db;
    const posts = new Map<string, PostRow>();
    const actorIds = new Set<number>(request.actors ?? []);
    // the viewer's own row: its DID names its likes, follows and blocks
    if (viewer !== null) actorIds.add(viewer);
    const documentKeys = new Map<string, DocumentKey>();
    const addDocument = (key: DocumentKey): void => {
      documentKeys.set(docKey(key.table, key.actorId, key.rkey), key);
      actorIds.add(key.actorId);
    };
    for (const key of request.documents ?? []) addDocument(key);

    // Posts, by rounds: each round loads what the previous one refers to.
    let wanted: RecordKey[] = [...(request.posts ?? [])];
    const requested = new Set<string>();
    for (let round = 0; round < MAX_POST_ROUNDS && wanted.length > 0; round++) {
      const rows = await loadPosts(db, dedupe(wanted, requested));
      const next: RecordKey[] = [];
      for (const post of rows) {
        posts.set(keyOf(post.authorId, post.rkey), post);
        actorIds.add(post.authorId);
        // its postgate (embeddingDisabled, detached quotes), and a thread root's threadgate
        addDocument({ table: 'postgates', actorId: post.authorId, rkey: post.rkey });
        if (post.replyRootActorId === null) addDocument({ table: 'threadgates', actorId: post.authorId, rkey: post.rkey });
        const last = round === MAX_POST_ROUNDS - 1;
        const ref = embedRefOf(post);
        if (ref) {
          actorIds.add(ref.actorId);
          const table = EMBED_DOCUMENT_TABLES[ref.collection];
          if (ref.collection === 'app.bsky.feed.post') {
            if (!last) next.push(ref);
          } else if (table) addDocument({ table, actorId: ref.actorId, rkey: ref.rkey });
        }
        if (post.replyParentActorId !== null) actorIds.add(post.replyParentActorId);
        if (post.replyRootActorId !== null) actorIds.add(post.replyRootActorId);
        if (round === 0 && request.replyContext && post.replyParentActorId !== null && post.replyParentRkey !== null) {
          next.push({ actorId: post.replyParentActorId, rkey: post.replyParentRkey });
          if (post.replyRootActorId !== null && post.replyRootRkey !== null) next.push({ actorId: post.replyRootActorId, rkey: post.replyRootRkey });
        }
      }
      // posts whose rows are missing keep their actor (their URI needs the DID)
      for (const key of wanted) actorIds.add(key.actorId);
      wanted = next;
    }
    for (const key of wanted) actorIds.add(key.actorId);

    const ids = [...actorIds];
    const postKeys = [...posts.values()].map((post) => ({ actorId: post.authorId, rkey: post.rkey }));
    const [actorRows, relationRows, blockPairs, postViewerRows, associatedRows] = await Promise.all([
      loadActors(db, ids),
      viewer === null ? Promise.resolve([]) : loadRelations(db, viewer, ids),
      loadBlockPairs(db, ids),
      viewer === null ? Promise.resolve([]) : loadPostViewer(db, viewer, postKeys),
      loadAssociated(db, request.detailedActors ?? []),
    ]);

    const relations = new Map<number, ViewerRelation>();
    const relation = (id: number): ViewerRelation => {
      let found = relations.get(id);
      if (!found) relations.set(id, (found = {}));
      return found;
    };
    for (const row of relationRows) {
      const entry = relation(row.other);
      if (row.kind === 'following') entry.following = row.rkey;
      else if (row.kind === 'followedBy') entry.followedBy = row.rkey;
      else if (row.kind === 'blocking') entry.blocking = row.rkey;
      else if (row.kind === 'blockedBy' || row.kind === 'blockedByList') entry.blockedBy = true;
      else if (row.kind === 'blockingByList' && row.listActorId !== null) {
        entry.blockingByList = { actorId: row.listActorId, rkey: row.rkey };
        addDocument({ table: 'lists', actorId: row.listActorId, rkey: row.rkey });
      }
    }

    const documentRows = await loadDocuments(db, [...documentKeys.values()], viewer);
    const likes = new Map<string, string>();
    const reposts = new Map<string, string>();
    for (const row of postViewerRows) (row.kind === 'like' ? likes : reposts).set(keyOf(row.actorId, row.subjectRkey), row.rkey);

    return {
      viewer,
      actors: new Map(actorRows.map((row) => [row.id, row])),
      posts,
      documents: new Map(documentRows.map((row) => [docKey(row.table, row.authorId, row.rkey), row])),
      likes,
      reposts,
      relations,
      blocks: new Set(blockPairs.map(([blocker, blocked]) => `${blocker}>${blocked}`)),
      associated: new Map(associatedRows.map((row) => [row.actorId, row])),
    };
  }
}

function dedupe(keys: readonly RecordKey[], seen: Set<string>): RecordKey[] {
  const out: RecordKey[] = [];
  for (const key of keys) {
    const id = keyOf(key.actorId, key.rkey);
    if (seen.has(id)) continue;
    seen.add(id);
    out.push(key);
  }
  return out;
}
