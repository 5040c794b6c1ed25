/**
 * One simulated account's repository: its MST, its records and its signed head commit.
 *
 * Owns: the current MST root, the live record blocks by path, and the current commit.
 * Promises: `write` produces a real atproto v3 commit `{did, version: 3, data, rev, prev: null, sig}`
 * signed over the DAG-CBOR of the unsigned commit, plus the CAR slice a PDS sends: the commit, every
 * MST node the write created, the untouched nodes on the ops' key paths (enough to invert the ops
 * against `prevData`), and the new record blocks. With `persist: false` the repo stays exactly as it
 * was (used for forged commits a correct consumer must reject): MST nodes are immutable, so
 * dropping the new root is the whole rollback.
 */
import { cborBlock, encodeCar, link, type Block } from './block.ts';
import { encode } from './cbor.ts';
import type { SimKey } from './keys.ts';
import { EMPTY_NODE, collectPath, freshNodes, mstBuild, mstDelete, mstNodes, mstPut, type MstNode } from './mst.ts';

export type OpAction = 'create' | 'update' | 'delete';

export interface RepoOp {
  readonly action: OpAction;
  readonly collection: string;
  readonly rkey: string;
  /** the record value for create and update; ignored for delete */
  readonly record?: unknown;
}

export interface WrittenOp {
  readonly action: OpAction;
  readonly path: string;
  /** raw CID bytes of the new record (null for delete) */
  readonly cid: Uint8Array | null;
  /** raw CID bytes of the record this op replaced or deleted */
  readonly prev: Uint8Array | null;
}

export interface WrittenCommit {
  readonly commit: Block;
  readonly rev: string;
  readonly since: string | null;
  /** MST root before the write */
  readonly prevData: Uint8Array;
  /** MST root after the write */
  readonly data: Uint8Array;
  readonly ops: readonly WrittenOp[];
  /** CAR v1 slice, root = commit */
  readonly car: Uint8Array;
}

const nodeBlock = (node: MstNode): Block => ({ cid: node.cid, bytes: node.bytes });

export class SimRepo {
  readonly did: string;
  #root: MstNode = EMPTY_NODE;
  #records = new Map<string, Block>();
  #head: Block | null = null;
  #rev: string | null = null;
  #writes = 0;

  constructor(did: string) {
    this.did = did;
  }

  get head(): Block | null {
    return this.#head;
  }

  get rev(): string | null {
    return this.#rev;
  }

  /** MST root CID bytes */
  get data(): Uint8Array {
    return this.#root.cid;
  }

  get recordCount(): number {
    return this.#records.size;
  }

  getRecord(collection: string, rkey: string): Block | undefined {
    return this.#records.get(`${collection}/${rkey}`);
  }

  /** Applies `ops` in order, signs with `key`, and returns the commit and its CAR slice. */
  write(ops: readonly RepoOp[], rev: string, key: Pick<SimKey, 'sign'>, persist: boolean): WrittenCommit {
    const birth = ++this.#writes;
    const oldRoot = this.#root;
    const pending = new Map<string, Block | null>();
    const recordBlocks = new Map<string, Block>();
    const written: WrittenOp[] = [];
    let root = oldRoot;
    for (const op of ops) {
      const path = `${op.collection}/${op.rkey}`;
      const before = pending.has(path) ? pending.get(path)! : (this.#records.get(path) ?? null);
      if (op.action === 'delete') {
        root = mstDelete(root, path, birth);
        pending.set(path, null);
        written.push({ action: 'delete', path, cid: null, prev: before?.cid ?? null });
      } else {
        const block = cborBlock(op.record);
        root = mstPut(root, path, block.cid, birth);
        pending.set(path, block);
        recordBlocks.set(path, block);
        written.push({ action: op.action, path, cid: block.cid, prev: before?.cid ?? null });
      }
    }

    const nodes = new Set<MstNode>(freshNodes(root, birth));
    nodes.add(root);
    for (const op of ops) collectPath(root, `${op.collection}/${op.rkey}`, nodes);

    const data = root.cid;
    const unsigned = { did: this.did, version: 3, data: link(data), rev, prev: null };
    const sig = key.sign(encode(unsigned));
    const commit = cborBlock({ ...unsigned, sig });
    const blocks: Block[] = [commit];
    for (const node of nodes) blocks.push(nodeBlock(node));
    for (const [path, block] of recordBlocks) if (pending.get(path) === block) blocks.push(block);
    const car = encodeCar(commit.cid, blocks);

    const result: WrittenCommit = { commit, rev, since: this.#rev, prevData: oldRoot.cid, data, ops: written, car };
    if (persist) {
      for (const [path, block] of pending) {
        if (block === null) this.#records.delete(path);
        else this.#records.set(path, block);
      }
      this.#root = root;
      this.#head = commit;
      this.#rev = rev;
    }
    return result;
  }

  /**
   * Makes an empty repo hold `paths` (strictly ascending) with `records` in one signed commit at
   * `rev`, as a repo that existed before the simulation: no commit frame is made for it, and the
   * next `write` chains from it (`since` = this rev, `prevData` = this MST root).
   */
  preload(paths: readonly string[], records: readonly Block[], rev: string, key: Pick<SimKey, 'sign'>): void {
    if (this.#head !== null) throw new Error(`simulator: ${this.did} already has a repo`);
    const birth = ++this.#writes;
    this.#root = mstBuild(paths, records.map((r) => r.cid), birth);
    for (let i = 0; i < paths.length; i++) this.#records.set(paths[i]!, records[i]!);
    this.#head = this.#sign(rev, key);
    this.#rev = rev;
  }

  #sign(rev: string, key: Pick<SimKey, 'sign'>): Block {
    const unsigned = { did: this.did, version: 3, data: link(this.#root.cid), rev, prev: null };
    return cborBlock({ ...unsigned, sig: key.sign(encode(unsigned)) });
  }

  /**
   * Every block of the current repo (commit, MST nodes, records), for getRepo. Null before the first
   * commit. For a hostile host: `signer` re-signs the head commit with another key, `root: 'data'`
   * names the MST root in the CAR header instead of the commit.
   */
  exportCar(hostile: { signer?: Pick<SimKey, 'sign'>; root?: 'data' } = {}): Uint8Array<ArrayBuffer> | null {
    if (this.#head === null || this.#rev === null) return null;
    const head = hostile.signer === undefined ? this.#head : this.#sign(this.#rev, hostile.signer);
    const blocks: Block[] = [head];
    for (const node of mstNodes(this.#root)) blocks.push(nodeBlock(node));
    blocks.push(...this.#records.values());
    return encodeCar(hostile.root === 'data' ? this.#root.cid : head.cid, blocks);
  }
}
