/**
 * Simulated accounts and the directory that finds them.
 *
 * Owns: each account's identity (DID, handle, signing key), its status and its repository.
 * Promises: everything is derived from (seed, index), so the same seed gives the same DIDs, handles
 * and keys; a DID is `did:plc:` + 24 base32 characters like a real PLC identifier; handles are
 * `<name>.sim.test` and unique; keys are real secp256k1 or P-256 keys in the form the directory's
 * key-form shares give the account (keys.ts), computed on first use.
 */
import { toBase32 } from '@atcute/multibase';
import { sha256 } from './k256.ts';
import { pickKeyForm, simKey, type KeyFormShares, type SimKey, type SimKeyForm } from './keys.ts';
import { SimRepo } from './repo.ts';

export type AccountStatus = 'active' | 'deactivated' | 'deleted';

export const HANDLE_DOMAIN = 'sim.test';

const SYLLABLES = ['ka', 'ri', 'mo', 'an', 'to', 'lu', 'sen', 'ba', 'vi', 'ne', 'zo', 'pa', 'el', 'quin', 'dar', 'sol'];

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

export const didFor = (seed: string, index: number): string =>
  `did:plc:${toBase32(sha256(utf8(`aqueduct-sim/did/${seed}/${index}`))).slice(0, 24)}`;

const nameFor = (seed: string, index: number): string => {
  const h = sha256(utf8(`aqueduct-sim/name/${seed}/${index}`));
  const parts: string[] = [];
  for (let i = 0; i < 2 + (h[0]! % 2); i++) parts.push(SYLLABLES[h[i + 1]! % SYLLABLES.length]!);
  return `${parts.join('')}-${index.toString(36)}`;
};

export class Account {
  readonly index: number;
  readonly did: string;
  readonly clockId: number;
  readonly name: string;
  handle: string;
  status: AccountStatus = 'active';
  /** number of handle changes so far (makes the next handle unique) */
  handleVersion = 0;
  readonly keyForm: SimKeyForm;
  readonly #seed: string;
  #key: SimKey | null = null;
  #repo: SimRepo | null = null;

  constructor(seed: string, index: number, keyForm: SimKeyForm = 'multikey') {
    this.#seed = seed;
    this.index = index;
    this.keyForm = keyForm;
    this.did = didFor(seed, index);
    this.name = nameFor(seed, index);
    this.handle = `${this.name}.${HANDLE_DOMAIN}`;
    this.clockId = index % 1024;
  }

  get key(): SimKey {
    this.#key ??= simKey(this.keyForm, utf8(`aqueduct-sim/key/${this.#seed}/${this.index}`));
    return this.#key;
  }

  get multikey(): string {
    return this.key.multikey;
  }

  /** The repository, created on first use (an account has no repo until its first commit). */
  get repo(): SimRepo {
    this.#repo ??= new SimRepo(this.did);
    return this.#repo;
  }

  /** True once a commit was persisted to the repo. */
  get hasRepo(): boolean {
    return this.#repo !== null && this.#repo.head !== null;
  }
}

/**
 * All accounts of one simulation, by index, DID and current handle. Every account was registered
 * with the PLC directory before the simulation starts: account i at `registeredFrom + i` ms, the
 * order its export lists them in.
 */
export class AccountDirectory {
  readonly seed: string;
  readonly size: number;
  readonly registeredFrom: number;
  readonly keyForms: KeyFormShares;
  #accounts: (Account | undefined)[];
  #byDid = new Map<string, number>();
  #byHandle = new Map<string, number>();

  constructor(seed: string, size: number, keyForms: KeyFormShares = {}) {
    this.seed = seed;
    this.size = size;
    this.keyForms = keyForms;
    this.registeredFrom = Date.now() - size;
    this.#accounts = new Array<Account | undefined>(size);
    for (let i = 0; i < size; i++) {
      this.#byDid.set(didFor(seed, i), i);
    }
  }

  at(index: number): Account {
    let account = this.#accounts[index];
    if (account === undefined) {
      if (index < 0 || index >= this.size) throw new RangeError(`no account ${index}`);
      account = new Account(this.seed, index, pickKeyForm(this.seed, index, this.keyForms));
      this.#accounts[index] = account;
      this.#byHandle.set(account.handle, index);
    }
    return account;
  }

  /** Account `index` if it was ever used (never creates one). */
  peek(index: number): Account | undefined {
    return this.#accounts[index];
  }

  byDid(did: string): Account | undefined {
    const index = this.#byDid.get(did);
    return index === undefined ? undefined : this.at(index);
  }

  byHandle(handle: string): Account | undefined {
    const index = this.#byHandle.get(handle.toLowerCase());
    if (index !== undefined) return this.at(index);
    // handles of accounts not materialised yet are still resolvable
    const m = /^[a-z]+-([0-9a-z]+)\.sim\.test$/.exec(handle.toLowerCase());
    if (m === null) return undefined;
    const guess = Number.parseInt(m[1]!, 36);
    if (!Number.isSafeInteger(guess) || guess >= this.size) return undefined;
    const account = this.at(guess);
    return account.handle === handle.toLowerCase() ? account : undefined;
  }

  /** Gives `account` a new unique handle and returns it. */
  rename(account: Account): string {
    this.#byHandle.delete(account.handle);
    account.handleVersion++;
    account.handle = `${account.name}-v${account.handleVersion}.${HANDLE_DOMAIN}`;
    this.#byHandle.set(account.handle, account.index);
    return account.handle;
  }

  /** Accounts that have a repository, in index order. */
  *withRepos(fromIndex = 0): Generator<Account> {
    for (let i = fromIndex; i < this.size; i++) {
      const account = this.#accounts[i];
      if (account !== undefined && account.hasRepo) yield account;
    }
  }
}
