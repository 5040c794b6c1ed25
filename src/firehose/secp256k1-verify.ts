// secp256k1-verify: the one secp256k1 ECDSA check of the process, on the fastest libsecp256k1 at hand.
//
// Owns the choice of library. The system's libsecp256k1 (Debian and Ubuntu: `apt-get install
// libsecp256k1-1`; 0.2.0 on bookworm) is called through bun:ffi when it loads; otherwise the copy
// the `secp256k1` npm package bundles (a libsecp256k1 of 2019) is used, or its plain JavaScript
// fallback where it has no native binding (`packageBindingLoaded`). One check of a digest
// against an uncompressed key, idle: 50 us through the system's library, 64 us through the
// package's (26 and 37 on a faster box; `bench` flood, three full-size pairs: +7 to +11%
// commits/s), ~1,200 us in JavaScript.
// Promises: synchronous, never throws; true only for a valid signature over the digest, and
// both libraries accept only low-S signatures; each thread (the verification worker's too)
// loads its own copy.
import { dlopen, FFIType } from 'bun:ffi';
import secp256k1 from 'secp256k1';

/** `sig`: 64-byte compact (r, s); `digest`: 32 bytes; `key`: a 65-byte uncompressed SEC1 point. */
export type Secp256k1Verify = (sig: Uint8Array, digest: Uint8Array, key: Uint8Array) => boolean;

/** Names the dynamic loader finds on its own search path, newest soname first. */
const SYSTEM_LIBRARIES = ['libsecp256k1.so.2', 'libsecp256k1.so.1', 'libsecp256k1.so', 'libsecp256k1.dylib'];
/**
 * SECP256K1_CONTEXT_VERIFY: since 0.2.0 the same as CONTEXT_NONE (verification needs no context
 * of its own); a library older than that needs it, or its first check would abort the process.
 */
const CONTEXT_VERIFY = (1 << 0) | (1 << 8);

const SYMBOLS = {
  secp256k1_context_create: { args: [FFIType.u32], returns: FFIType.ptr },
  secp256k1_ec_pubkey_parse: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.u64], returns: FFIType.i32 },
  secp256k1_ecdsa_signature_parse_compact: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  secp256k1_ecdsa_verify: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
} as const;

/** The system library's check, or null when no libsecp256k1 loads (or it fails a known answer). */
export const systemSecp256k1Verify = (): Secp256k1Verify | null => {
  for (const name of SYSTEM_LIBRARIES) {
    let symbols;
    try {
      symbols = dlopen(name, SYMBOLS).symbols;
    } catch {
      continue; // not installed under that name
    }
    const context = symbols.secp256k1_context_create(CONTEXT_VERIFY);
    if (context === null) continue;
    // the library's parsed forms (64 bytes each), only read by the call that filled them
    const parsedKey = new Uint8Array(64);
    const parsedSig = new Uint8Array(64);
    const verify: Secp256k1Verify = (sig, digest, key) =>
      sig.length === 64 &&
      digest.length === 32 &&
      symbols.secp256k1_ec_pubkey_parse(context, parsedKey, key, key.length) === 1 &&
      symbols.secp256k1_ecdsa_signature_parse_compact(context, parsedSig, sig) === 1 &&
      symbols.secp256k1_ecdsa_verify(context, parsedSig, digest, parsedKey) === 1;
    if (answersAsThePackage(verify)) return verify;
  }
  return null;
};

/** A signature the package made: the system's library must accept it and refuse it for another digest. */
const answersAsThePackage = (verify: Secp256k1Verify): boolean => {
  const privateKey = new Uint8Array(32).fill(7);
  const digest = new Uint8Array(32).fill(1);
  const { signature } = secp256k1.ecdsaSign(digest, privateKey);
  const key = secp256k1.publicKeyCreate(privateKey, false);
  return verify(signature, digest, key) && !verify(signature, new Uint8Array(32).fill(2), key);
};

/** The npm package's check. */
export const packageSecp256k1Verify: Secp256k1Verify = (sig, digest, key) => {
  try {
    return secp256k1.ecdsaVerify(sig, digest, key);
  } catch {
    // r or s out of range or zero, or a malformed key
    return false;
  }
};

const system = systemSecp256k1Verify();

/**
 * Whether the package runs its native binding. It ships prebuilt ones for linux-x64 (glibc and
 * musl), darwin-arm64 and win32-x64, and `bun build --compile` embeds them; elsewhere (linux-arm64,
 * say) its build script would have to run, which `bun install` does not do for it, and it falls
 * back to `elliptic`, plain JavaScript.
 */
export const packageBindingLoaded = ((): boolean => {
  try {
    require('secp256k1/bindings');
    return true;
  } catch {
    return false;
  }
})();

/** Which library checks signatures in this process (logged at start-up; 'javascript' with a warning). */
export const secp256k1Library: 'system' | 'package' | 'javascript' = system ? 'system' : packageBindingLoaded ? 'package' : 'javascript';

/** Whether `sig` is a valid signature of `digest` under `key`. */
export const verifySecp256k1Digest: Secp256k1Verify = system ?? packageSecp256k1Verify;
