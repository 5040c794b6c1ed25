// commit-proof: the Sync 1.1 inductive proof of one #commit, checked against its CAR slice.
//
// Owns the rule that ties a commit's ops to its MST: start from the new tree (the signed commit's
// `data`), undo every op (a create is deleted, an update and a delete put `prev` back) and the root
// must be the frame's `prevData`; on the way each op must find the new tree as it says (a create or
// update holds its `cid`, a deleted path is absent). Then the op list is complete and exact: no op
// left out, none made up. Also owns the two MST writes that undoing needs, on a tree read only
// where they walk: put (split the subtree a new key falls into) and delete (merge the subtrees
// around the removed key, trim a keyless root); nodes are read and re-hashed by mst-node.ts.
// Promises: pure and synchronous, nothing in the input is changed; only the nodes on the ops' paths
// are read (the reference covering proofs suffice, in any op order), each checked against its CID;
// a failed proof throws a CommitProofError whose `reason` is one of a small fixed set. A legacy
// commit (no `prevData`, or an update or delete without `prev`, as before Sync 1.1) cannot be
// undone: it is checked forwards only and reported as 'ops-only', so the caller decides whether to
// trust it (indigo's VerifyCommitMessage does the same). Unlike indigo, an update whose `prev`
// equals its `cid` is not refused: undoing it is harmless. It does not check the signature or the
// record blocks (commit-reader.ts, signature.ts), nor that `prevData` is the repo's previous
// `data`: that is the caller's state.
import {
  Entry,
  CidRef,
  EMPTY_TREE_CID,
  keyHeight,
  loadNode,
  mstKey,
  MstError,
  MstNode,
  nodeCid,
  type BlockLookup,
  type Link,
} from './mst-node.ts';
import { ReasonError } from '../lib/reason-error.ts';

export type { BlockLookup } from './mst-node.ts';

export type CommitProofErrorReason =
  /** an op of the wrong shape: a CID missing or not 36 bytes, a create with `prev`, a path twice */
  | 'bad-op'
  /** an MST node the proof walks through is not in the blocks */
  | 'missing-block'
  /** an MST node does not hash to its CID, or is not a canonical node where it sits */
  | 'bad-node'
  /** the new tree does not hold what an op says */
  | 'op-mismatch'
  /** the ops, undone, do not lead back to `prevData` */
  | 'prev-data-mismatch';

export class CommitProofError extends ReasonError<CommitProofErrorReason> {
  override readonly name = 'CommitProofError';
}

export interface ProofOp {
  action: 'create' | 'update' | 'delete';
  /** `collection/rkey` */
  path: string;
  /** the record CID after the commit (36 bytes) for create and update; null for delete */
  cid: Uint8Array | null;
  /** the record CID before the commit for update and delete; null for create, and for a legacy op */
  prev: Uint8Array | null;
}

export interface CommitProofInput {
  /** MST root after the commit: the signed commit's `data` (36 CID bytes) */
  data: Uint8Array;
  /** MST root before the commit: the frame's `prevData`; null when the frame has none */
  prevData: Uint8Array | null;
  ops: readonly ProofOp[];
  /** the blocks of the commit's CAR slice (a CarIndex serves as is) */
  blocks: BlockLookup;
}

/**
 * 'inverted': the full proof held, from `prevData` to `data`. 'ops-only': a legacy commit; the new
 * tree holds what the ops say, but nothing shows the op list is complete.
 */
export type CommitProof = 'inverted' | 'ops-only';

// ---- the tree, read where the writes walk ----

const valueOf = (entry: Entry): CidRef => new CidRef(entry.valueBuf, entry.valueAt);

/** A key and value alone at `height`, under keyless nodes up to `top`. */
const chain = (key: Uint8Array, value: Uint8Array, height: number, top: number): MstNode => {
  let node = new MstNode(height, [new Entry(key, 0, key.length, value, 0, null)], null);
  for (let h = height + 1; h <= top; h++) node = new MstNode(h, [], node);
  return node;
};

const nodeOrNull = (height: number, entries: Entry[], left: Link): MstNode | null =>
  entries.length === 0 && left === null ? null : new MstNode(height, entries, left);

class PartialMst {
  readonly #blocks: BlockLookup;
  /** null: the empty tree */
  #root: MstNode | null;

  /** The tree whose root CID is `root`; its root node is read now. */
  constructor(blocks: BlockLookup, root: Uint8Array) {
    this.#blocks = blocks;
    this.#root = EMPTY_TREE_CID.equals(root) ? null : loadNode(blocks, new CidRef(root, 0), null);
  }

  /** The root CID, re-hashing the nodes that changed. */
  rootCid(): CidRef {
    return this.#root === null ? EMPTY_TREE_CID : nodeCid(this.#root);
  }

  /** The value at `key`, or null. */
  get(key: Uint8Array): CidRef | null {
    const height = keyHeight(key);
    let node = this.#root;
    while (node !== null && node.height >= height) {
      const found = node.search(key);
      if (node.height === height) return found & 1 ? node.value(found >> 1) : null;
      node = this.#child(node, found >> 1);
    }
    return null;
  }

  /** Sets `key` to `value`; returns the value it replaced, or null. */
  put(key: Uint8Array, value: Uint8Array): CidRef | null {
    const height = keyHeight(key);
    let root = this.#root;
    if (root === null) {
      this.#root = chain(key, value, height, height);
      return null;
    }
    while (root.height < height) root = new MstNode(root.height + 1, [], root);
    this.#root = root;
    return this.#putAt(root, key, height, value);
  }

  /** Removes `key`; returns the value it had, or null when it was absent. */
  delete(key: Uint8Array): CidRef | null {
    let root = this.#root;
    if (root === null) return null;
    const height = keyHeight(key);
    if (height > root.height) return null;
    const removed = this.#deleteAt(root, key, height);
    if (removed === null) return null;
    // a root left without keys gives way to its only subtree
    while (root !== null && root.count === 0) root = this.#child(root, 0);
    this.#root = root;
    return removed;
  }

  /** A subtree at `height`, decoded. */
  #resolve(link: MstNode | CidRef, height: number): MstNode {
    return link instanceof MstNode ? link : loadNode(this.#blocks, link, height);
  }

  /** The decoded subtree `i` of `node`, or null. */
  #child(node: MstNode, i: number): MstNode | null {
    const link = node.gap(i);
    if (link === null || link instanceof MstNode) return link;
    const child = loadNode(this.#blocks, link, node.height - 1);
    node.setGap(i, child);
    return child;
  }

  #putAt(node: MstNode, key: Uint8Array, height: number, value: Uint8Array): CidRef | null {
    const found = node.search(key);
    const i = found >> 1;
    node.cid = null;
    if (node.height === height) {
      if (found & 1) return node.setValue(i, value);
      const [below, above] = this.#split(node.gap(i), key, height - 1);
      node.insert(i, new Entry(key, 0, key.length, value, 0, above));
      node.setGap(i, below);
      return null;
    }
    const child = this.#child(node, i);
    if (child === null) {
      node.setGap(i, chain(key, value, height, node.height - 1));
      return null;
    }
    return this.#putAt(child, key, height, value);
  }

  /** The parts of a subtree below and above `key` (not in it), at the same height. */
  #split(link: Link, key: Uint8Array, height: number): [MstNode | null, MstNode | null] {
    if (link === null) return [null, null];
    const node = this.#resolve(link, height);
    const i = node.search(key) >> 1;
    const [below, above] = this.#split(node.gap(i), key, height - 1);
    // all of it on one side: the node stays as it is (and keeps its CID)
    if (i === 0 && below === null) return [null, node];
    if (i === node.count && above === null) return [node, null];
    const { entries } = node;
    const low = entries.slice(0, i);
    if (i > 0) low[i - 1]!.tree = below;
    return [nodeOrNull(height, low, i === 0 ? below : node.left), nodeOrNull(height, entries.slice(i), above)];
  }

  #deleteAt(node: MstNode, key: Uint8Array, height: number): CidRef | null {
    const found = node.search(key);
    const i = found >> 1;
    if (node.height === height) {
      if (!(found & 1)) return null;
      const removed = node.remove(i);
      node.setGap(i, this.#merge(node.gap(i), removed.tree, height - 1));
      node.cid = null;
      return valueOf(removed);
    }
    const child = this.#child(node, i);
    if (child === null) return null;
    const removed = this.#deleteAt(child, key, height);
    if (removed === null) return null;
    node.cid = null;
    if (child.isEmpty) node.setGap(i, null);
    return removed;
  }

  /** Joins two adjacent subtrees of the same height (every key of `low` below every key of `high`). */
  #merge(low: Link, high: Link, height: number): Link {
    if (low === null) return high;
    if (high === null) return low;
    const a = this.#resolve(low, height);
    const b = this.#resolve(high, height);
    const last = a.count;
    a.setGap(last, this.#merge(a.gap(last), b.left, height - 1));
    a.append(b.entries);
    a.cid = null;
    return a;
  }
}

// ---- the proof ----

const CID_LENGTH = 36;

const badOp = (i: number, op: ProofOp, what: string): CommitProofError =>
  new CommitProofError('bad-op', `op ${i} (${op.action}): ${what}`);

const isCid = (cid: Uint8Array | null): cid is Uint8Array => cid !== null && cid.length === CID_LENGTH;

/** Checks the shape of every op; true when the commit can be undone (every update and delete has `prev`). */
const checkOps = (ops: readonly ProofOp[]): boolean => {
  let invertible = true;
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    switch (op.action) {
      case 'create':
        if (!isCid(op.cid)) throw badOp(i, op, 'cid is not a 36-byte CID');
        if (op.prev !== null) throw badOp(i, op, 'a create has no prev');
        break;
      case 'update':
        if (!isCid(op.cid)) throw badOp(i, op, 'cid is not a 36-byte CID');
        if (op.prev === null) invertible = false;
        else if (!isCid(op.prev)) throw badOp(i, op, 'prev is not a 36-byte CID');
        break;
      case 'delete':
        if (op.cid !== null) throw badOp(i, op, 'a delete has no cid');
        if (op.prev === null) invertible = false;
        else if (!isCid(op.prev)) throw badOp(i, op, 'prev is not a 36-byte CID');
        break;
      default:
        throw badOp(i, op, 'unknown action');
    }
  }
  if (ops.length > 1) {
    const paths = new Set<string>();
    for (let i = 0; i < ops.length; i++) {
      const path = ops[i]!.path;
      if (paths.has(path)) throw badOp(i, ops[i]!, 'a path appears twice');
      paths.add(path);
    }
  }
  return invertible;
};

const mismatch = (i: number, op: ProofOp, what: string): CommitProofError =>
  new CommitProofError('op-mismatch', `op ${i} (${op.action} ${op.path}): ${what}`);

const holds = (value: CidRef | null, cid: Uint8Array): boolean => value !== null && value.equals(cid);

/** Undoes one op on the tree, checking on the way that the tree held what the op says. */
const invert = (tree: PartialMst, i: number, op: ProofOp): void => {
  const key = mstKey(op.path);
  switch (op.action) {
    case 'create':
      if (!holds(tree.delete(key), op.cid!)) throw mismatch(i, op, 'the new tree does not hold its cid');
      return;
    case 'update':
      if (!holds(tree.put(key, op.prev!), op.cid!)) throw mismatch(i, op, 'the new tree does not hold its cid');
      return;
    case 'delete':
      if (tree.put(key, op.prev!) !== null) throw mismatch(i, op, 'the new tree still holds the path');
      return;
  }
};

/** The forward check of a legacy op. */
const checkForward = (tree: PartialMst, i: number, op: ProofOp): void => {
  const value = tree.get(mstKey(op.path));
  if (op.action === 'delete') {
    if (value !== null) throw mismatch(i, op, 'the new tree still holds the path');
  } else if (!holds(value, op.cid!)) {
    throw mismatch(i, op, 'the new tree does not hold its cid');
  }
};

/** Proves a commit's ops against its MST; throws a CommitProofError when they do not hold. */
export const proveCommit = (input: CommitProofInput): CommitProof => {
  const { ops, prevData } = input;
  const invertible = checkOps(ops) && prevData !== null;
  try {
    const tree = new PartialMst(input.blocks, input.data);
    if (!invertible) {
      for (let i = 0; i < ops.length; i++) checkForward(tree, i, ops[i]!);
      return 'ops-only';
    }
    for (let i = 0; i < ops.length; i++) invert(tree, i, ops[i]!);
    if (!tree.rootCid().equals(prevData)) {
      throw new CommitProofError('prev-data-mismatch', 'the ops, undone, do not lead back to prevData');
    }
    return 'inverted';
  } catch (err) {
    if (err instanceof MstError) throw new CommitProofError(err.reason, err.message, { cause: err });
    throw err;
  }
};
