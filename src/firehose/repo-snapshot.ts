// repo-snapshot: a whole repo as com.atproto.sync.getRepo exports it (a CAR), read into its signed
// commit and every record path it holds.
//
// Owns the walk of a full MST. Promises: pure and synchronous; every node is checked against its
// CID and its canonical layout (mst-node.ts `loadNode`), the keys across the whole walk must be
// strictly ascending (so a CAR whose tree links a subtree twice, or out of order, is refused
// rather than walked again and again: the walk visits each key once and is bounded by the CAR's
// size), and the commit is the CAR's first root (commit-reader.ts). Record blocks are not read
// here: `leaves` says where each record is, and the caller decodes the ones it indexes
// (`readRecordBlock`). Malformed input throws a CommitReadError or an MstError, with a `reason`.
import * as CID from '@atcute/cid';

import type { CarIndex } from './car-index.ts';
import { readRepoCommit, type SignedCommit } from './commit-reader.ts';
import { CidRef, EMPTY_TREE_CID, loadNode, MstError, type MstNode } from './mst-node.ts';

export interface RepoLeaf {
  /** `collection/rkey` */
  readonly path: string;
  /** the record's CID (base32 string) */
  readonly cid: string;
}

export interface RepoSnapshot {
  readonly commit: SignedCommit;
  readonly blocks: CarIndex;
  /** every record path of the repo, in key order */
  readonly leaves: readonly RepoLeaf[];
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export const readRepoSnapshot = (did: string, car: Uint8Array): RepoSnapshot => {
  const { commit, blocks } = readRepoCommit(did, car);
  const leaves: RepoLeaf[] = [];
  const root = commit.data.bytes;
  if (!EMPTY_TREE_CID.equals(root)) {
    let last: Uint8Array | null = null;
    const visit = (node: MstNode): void => {
      const entries = node.entries;
      for (let i = 0; i <= entries.length; i++) {
        const subtree = node.gap(i);
        if (subtree !== null) visit(subtree instanceof CidRef ? loadNode(blocks, subtree, node.height - 1) : subtree);
        if (i === entries.length) break;
        const entry = entries[i]!;
        const key = entry.keyBuf.subarray(entry.keyAt, entry.keyAt + entry.keyLength);
        if (last !== null && compareBytes(last, key) >= 0) throw new MstError('bad-node', 'MST keys are not strictly ascending across nodes');
        last = key;
        leaves.push({ path: utf8.decode(key), cid: CID.toString(CID.decode(node.value(i).bytes())) });
      }
    };
    visit(loadNode(blocks, new CidRef(root, 0), null));
  }
  return { commit, blocks, leaves };
};

const compareBytes = (a: Uint8Array, b: Uint8Array): number => {
  const end = Math.min(a.length, b.length);
  for (let i = 0; i < end; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
};
