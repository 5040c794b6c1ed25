/**
 * The conformance workload: what people do on a PDS, driven through the reference PDS's own XRPC
 * API, in three phases (before Aqueduct starts, while it follows live, after it was killed).
 *
 * Covers accounts; profiles (with an avatar) and their edits; posts with facets, languages,
 * images, external links, quotes (with and without media), replies and threads; likes, reposts,
 * follows, blocks, lists (curation and moderation) and their items, list blocks, starter packs,
 * feed generator records, threadgates and postgates; an update of a post; deletes of every kind;
 * a handle change; deactivation, reactivation and deletion of accounts. Everything it writes is
 * kept in `Workload` so the checks can name it.
 */
import { fetchRepo, type RepoRecords } from './index-state.ts';
import { adminAuth, bearer, xrpc } from './pds-client.ts';
import type { ReferenceNetwork } from './reference/reference-network.ts';

export interface Account {
  readonly name: string;
  readonly did: string;
  handle: string;
  readonly password: string;
  jwt: string;
}

export interface StrongRef {
  readonly uri: string;
  readonly cid: string;
}

const NAMES = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank'] as const;
type Name = (typeof NAMES)[number];

// a valid 1x1 PNG
const PNG = Uint8Array.from(
  Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64'),
);

const rkeyOf = (uri: string): string => uri.slice(uri.lastIndexOf('/') + 1);

export class Workload {
  readonly ref: ReferenceNetwork;
  readonly accounts = new Map<Name, Account>();
  readonly posts = new Map<string, StrongRef>();
  readonly lists = new Map<string, StrongRef>();
  readonly records = new Map<string, StrongRef>();
  /** accounts deleted from the PDS (their records are gone) */
  readonly deleted = new Set<string>();
  /** the repos of deleted accounts as they were just before */
  readonly deletedRepos = new Map<string, RepoRecords>();
  /** posts edited after another post quoted them */
  readonly editedAfterQuote = new Set<string>();
  /** accounts deactivated now */
  readonly deactivated = new Set<string>();
  /** the repos of deactivated accounts as they were when they were deactivated (getRepo refuses them) */
  readonly snapshots = new Map<string, RepoRecords>();
  #tick = 0;
  readonly #suffix = Date.now().toString(36).slice(-5);

  constructor(ref: ReferenceNetwork) {
    this.ref = ref;
  }

  account(name: Name): Account {
    const account = this.accounts.get(name);
    if (!account) throw new Error(`no account ${name}`);
    return account;
  }

  /** A createdAt a millisecond after the last, so orderings are stable. */
  #now(): string {
    return new Date(Date.UTC(2026, 0, 1) + ++this.#tick * 1000).toISOString();
  }

  async #create(name: Name, collection: string, record: Record<string, unknown>, rkey?: string): Promise<StrongRef> {
    const account = this.account(name);
    const body = { repo: account.did, collection, record: { $type: collection, ...record }, ...(rkey ? { rkey } : {}) };
    const { uri, cid } = await xrpc<StrongRef>(this.ref.pds, 'com.atproto.repo.createRecord', { body, authorization: bearer(account.jwt) });
    this.records.set(uri, { uri, cid });
    return { uri, cid };
  }

  async #put(name: Name, collection: string, rkey: string, record: Record<string, unknown>): Promise<StrongRef> {
    const account = this.account(name);
    const body = { repo: account.did, collection, rkey, record: { $type: collection, ...record } };
    const { uri, cid } = await xrpc<StrongRef>(this.ref.pds, 'com.atproto.repo.putRecord', { body, authorization: bearer(account.jwt) });
    this.records.set(uri, { uri, cid });
    return { uri, cid };
  }

  async delete(name: Name, uri: string): Promise<void> {
    const account = this.account(name);
    const [, , , collection, rkey] = uri.split('/');
    await xrpc(this.ref.pds, 'com.atproto.repo.deleteRecord', { body: { repo: account.did, collection, rkey }, authorization: bearer(account.jwt) });
    this.records.delete(uri);
    this.posts.forEach((ref, key) => ref.uri === uri && this.posts.delete(key));
  }

  async post(name: Name, key: string, record: Record<string, unknown>): Promise<StrongRef> {
    const ref = await this.#create(name, 'app.bsky.feed.post', { createdAt: this.#now(), ...record });
    this.posts.set(key, ref);
    return ref;
  }

  #post(key: string): StrongRef {
    const ref = this.posts.get(key);
    if (!ref) throw new Error(`no post ${key}`);
    return ref;
  }

  async like(name: Name, key: string): Promise<StrongRef> {
    return this.#create(name, 'app.bsky.feed.like', { subject: this.#post(key), createdAt: this.#now() });
  }

  async repost(name: Name, key: string): Promise<StrongRef> {
    return this.#create(name, 'app.bsky.feed.repost', { subject: this.#post(key), createdAt: this.#now() });
  }

  async follow(name: Name, subject: Name): Promise<StrongRef> {
    return this.#create(name, 'app.bsky.graph.follow', { subject: this.account(subject).did, createdAt: this.#now() });
  }

  async block(name: Name, subject: Name): Promise<StrongRef> {
    return this.#create(name, 'app.bsky.graph.block', { subject: this.account(subject).did, createdAt: this.#now() });
  }

  async reply(name: Name, key: string, parentKey: string, text: string): Promise<StrongRef> {
    const parent = this.#post(parentKey);
    const parentRecord = await xrpc<{ value: { reply?: { root: StrongRef } } }>(this.ref.pds, 'com.atproto.repo.getRecord', {
      query: { repo: parent.uri.split('/')[2], collection: 'app.bsky.feed.post', rkey: rkeyOf(parent.uri) },
    });
    const root = parentRecord.value.reply?.root ?? parent;
    return this.post(name, key, { text, reply: { root, parent } });
  }

  async list(name: Name, key: string, purpose: 'curatelist' | 'modlist', members: Name[]): Promise<StrongRef> {
    const list = await this.#create(name, 'app.bsky.graph.list', {
      purpose: `app.bsky.graph.defs#${purpose}`,
      name: `${key} list`,
      description: `the ${key} list of ${name}`,
      createdAt: this.#now(),
    });
    this.lists.set(key, list);
    for (const member of members) await this.listItem(name, key, member);
    return list;
  }

  async listItem(name: Name, key: string, member: Name): Promise<StrongRef> {
    return this.#create(name, 'app.bsky.graph.listitem', { subject: this.account(member).did, list: this.lists.get(key)!.uri, createdAt: this.#now() });
  }

  async blob(name: Name): Promise<Record<string, unknown>> {
    const account = this.account(name);
    const answer = await xrpc<{ blob: Record<string, unknown> }>(this.ref.pds, 'com.atproto.repo.uploadBlob', {
      bytes: { data: PNG, type: 'image/png' },
      authorization: bearer(account.jwt),
    });
    return answer.blob;
  }

  async profile(name: Name, displayName: string, description: string, avatar = false): Promise<StrongRef> {
    return this.#put(name, 'app.bsky.actor.profile', 'self', {
      displayName,
      description,
      ...(avatar ? { avatar: await this.blob(name) } : {}),
      createdAt: this.#now(),
    });
  }

  async createAccounts(): Promise<void> {
    for (const name of NAMES) {
      const handle = `${name}-${this.#suffix}.test`;
      const password = `${name}-password`;
      const answer = await xrpc<{ did: string; accessJwt: string; handle: string }>(this.ref.pds, 'com.atproto.server.createAccount', {
        body: { handle, email: `${name}-${this.#suffix}@example.com`, password },
      });
      this.accounts.set(name, { name, did: answer.did, handle: answer.handle, password, jwt: answer.accessJwt });
    }
  }

  /** Phase 1: a small network's history, before Aqueduct starts (replayed from cursor 0). */
  async history(): Promise<void> {
    await this.createAccounts();
    await this.profile('alice', 'Alice', 'first of the alphabet', true);
    await this.profile('bob', 'Bob', 'builds things');
    await this.profile('carol', 'Carol <script>', 'sings');
    await this.profile('dave', 'Dave', 'moderates');

    await this.post('alice', 'a0', { text: 'hello world', langs: ['en'] });
    await this.post('alice', 'a1', {
      text: `hi @${this.account('bob').handle} see https://example.com #atproto`,
      facets: [
        {
          index: { byteStart: 3, byteEnd: 4 + this.account('bob').handle.length },
          features: [{ $type: 'app.bsky.richtext.facet#mention', did: this.account('bob').did }],
        },
      ],
    });
    await this.post('bob', 'b0', { text: 'a picture', embed: { $type: 'app.bsky.embed.images', images: [{ image: await this.blob('bob'), alt: 'one pixel', aspectRatio: { width: 1, height: 1 } }] } });
    await this.post('carol', 'c0', {
      text: 'a link',
      embed: { $type: 'app.bsky.embed.external', external: { uri: 'https://example.com/article', title: 'An article', description: 'about things' } },
    });
    await this.post('dave', 'd0', { text: 'quoting alice', embed: { $type: 'app.bsky.embed.record', record: this.#post('a1') } });
    await this.post('erin', 'e0', {
      text: 'quote with media',
      embed: {
        $type: 'app.bsky.embed.recordWithMedia',
        record: { $type: 'app.bsky.embed.record', record: this.#post('c0') },
        media: { $type: 'app.bsky.embed.images', images: [{ image: await this.blob('erin'), alt: 'pixel' }] },
      },
    });
    await this.reply('bob', 'b1', 'a0', 'replying to alice');
    await this.reply('carol', 'c1', 'b1', 'replying to bob');
    await this.reply('alice', 'a2', 'c1', 'deep in the thread');
    await this.reply('frank', 'f0', 'a0', 'frank was here');
    await this.post('frank', 'f1', { text: 'frank alone' });

    for (const [name, key] of [['bob', 'a0'], ['carol', 'a0'], ['dave', 'a0'], ['alice', 'b0'], ['erin', 'b0'], ['alice', 'c1'], ['frank', 'd0']] as const) {
      await this.like(name, key);
    }
    await this.repost('bob', 'a1');
    await this.repost('carol', 'a1');
    await this.repost('dave', 'b0');
    for (const [name, subject] of [
      ['alice', 'bob'], ['alice', 'carol'], ['bob', 'alice'], ['carol', 'alice'], ['dave', 'alice'],
      ['erin', 'alice'], ['erin', 'bob'], ['frank', 'alice'], ['bob', 'carol'],
    ] as const) {
      await this.follow(name, subject);
    }
    await this.block('frank', 'erin');

    await this.list('alice', 'friends', 'curatelist', ['bob', 'carol']);
    await this.list('dave', 'spam', 'modlist', ['frank']);
    await this.#create('erin', 'app.bsky.graph.listblock', { subject: this.lists.get('spam')!.uri, createdAt: this.#now() });
    await this.#create('alice', 'app.bsky.graph.starterpack', { name: 'Alice starters', list: this.lists.get('friends')!.uri, createdAt: this.#now() });
    await this.#create('carol', 'app.bsky.feed.generator', { did: 'did:web:feeds.example.com', displayName: 'Carol feed', description: 'songs', createdAt: this.#now() });
    await this.#create('alice', 'app.bsky.feed.threadgate', { post: this.#post('a0').uri, allow: [{ $type: 'app.bsky.feed.threadgate#followingRule' }], createdAt: this.#now() }, rkeyOf(this.#post('a0').uri));
    await this.#create('alice', 'app.bsky.feed.postgate', { post: this.#post('a1').uri, detachedEmbeddingUris: [], embeddingRules: [], createdAt: this.#now() }, rkeyOf(this.#post('a1').uri));
  }

  /** Phase 2, while Aqueduct follows live: more of everything, edits, deletes, a handle change. */
  async live(): Promise<void> {
    await this.post('bob', 'b2', { text: 'live from bob' });
    await this.like('alice', 'b2');
    await this.like('carol', 'b2');
    await this.profile('bob', 'Bob B.', 'builds more things');
    await this.#put('carol', 'app.bsky.feed.post', rkeyOf(this.#post('c0').uri), {
      text: 'a link, edited',
      createdAt: this.#now(),
    });
    this.posts.set('c0', this.records.get(this.#post('c0').uri)!);
    this.editedAfterQuote.add(this.#post('c0').uri); // erin's e0 quotes it

    // deletes of every kind
    const likes = [...this.records.values()].filter((ref) => ref.uri.includes('/app.bsky.feed.like/'));
    await this.delete('dave', likes.find((ref) => ref.uri.includes(this.account('dave').did))!.uri);
    const reposts = [...this.records.values()].filter((ref) => ref.uri.includes('/app.bsky.feed.repost/'));
    await this.delete('carol', reposts.find((ref) => ref.uri.includes(this.account('carol').did))!.uri);
    const follows = [...this.records.values()].filter((ref) => ref.uri.includes(`${this.account('bob').did}/app.bsky.graph.follow/`));
    await this.delete('bob', follows.at(-1)!.uri);
    const block = [...this.records.values()].find((ref) => ref.uri.includes('/app.bsky.graph.block/'))!;
    await this.delete('frank', block.uri);
    await this.delete('carol', this.#post('c1').uri); // a reply with a reply below it
    const item = [...this.records.values()].find((ref) => ref.uri.includes(`${this.account('alice').did}/app.bsky.graph.listitem/`))!;
    await this.delete('alice', item.uri);

    const carol = this.account('carol');
    carol.handle = `carol2-${this.#suffix}.test`;
    await xrpc(this.ref.pds, 'com.atproto.identity.updateHandle', { body: { handle: carol.handle }, authorization: bearer(carol.jwt) });

    await this.#setActive('erin', false);
  }

  /** Phase 3, after Aqueduct was killed and restarted: reactivation, deletion, and more posts. */
  async after(): Promise<void> {
    await this.#setActive('erin', true);
    await this.post('erin', 'e1', { text: 'back again' });
    await this.like('bob', 'e1');
    const frank = this.account('frank');
    this.deletedRepos.set(frank.did, await fetchRepo(this.ref.pds, frank.did));
    await xrpc(this.ref.pds, 'com.atproto.admin.deleteAccount', { body: { did: frank.did }, authorization: adminAuth(this.ref.pdsAdminPassword) });
    this.deleted.add(frank.did);
    for (const uri of [...this.records.keys()]) if (uri.startsWith(`at://${frank.did}/`)) this.records.delete(uri);
    await this.delete('dave', this.lists.get('spam')!.uri);
    await this.post('dave', 'd1', { text: 'dave signs off' });
    await this.#setActive('dave', false);
  }

  async #setActive(name: Name, active: boolean): Promise<void> {
    const account = this.account(name);
    if (active) {
      const session = await xrpc<{ accessJwt: string }>(this.ref.pds, 'com.atproto.server.createSession', { body: { identifier: account.did, password: account.password } });
      account.jwt = session.accessJwt;
      await xrpc(this.ref.pds, 'com.atproto.server.activateAccount', { post: true, authorization: bearer(account.jwt) });
      this.deactivated.delete(account.did);
      this.snapshots.delete(account.did);
    } else {
      this.snapshots.set(account.did, await fetchRepo(this.ref.pds, account.did));
      await xrpc(this.ref.pds, 'com.atproto.server.deactivateAccount', { body: {}, authorization: bearer(account.jwt) });
      this.deactivated.add(account.did);
    }
  }
}
