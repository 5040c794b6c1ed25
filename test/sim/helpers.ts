/**
 * Test helpers for the simulator: a real WebSocket consumer and an independent frame decoder.
 * Nothing here imports the simulator's encoders, so the tests check the wire format, not our own code.
 */
import * as CAR from '@atcute/car';
import * as CBOR from '@atcute/cbor';
import * as CID from '@atcute/cid';
import { Secp256k1PublicKey, parsePublicMultikey } from '@atcute/crypto';

export interface DecodedFrame {
  header: { op: number; t?: string };
  body: Record<string, unknown>;
}

/** Header then body, per the event stream spec; throws on anything else. */
export const decodeFrame = (bytes: Uint8Array): DecodedFrame => {
  const [header, rest] = CBOR.decodeFirst(bytes);
  if (typeof header !== 'object' || header === null || typeof header.op !== 'number') throw new Error('bad header');
  const [body, tail] = CBOR.decodeFirst(rest);
  if (tail.length !== 0) throw new Error('trailing bytes');
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new Error('body is not a map');
  return { header, body };
};

export const tryDecode = (bytes: Uint8Array): DecodedFrame | null => {
  try {
    return decodeFrame(bytes);
  } catch {
    return null;
  }
};

/** Opens a subscription and collects `count` binary frames (or until the socket closes). */
export const readFrames = (url: string, count: number): Promise<Uint8Array[]> =>
  new Promise((resolve, reject) => {
    const frames: Uint8Array[] = [];
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    let settled = false;
    const finish = (): void => {
      if (settled) return;
      settled = true;
      ws.close();
      resolve(frames);
    };
    ws.onmessage = (ev) => {
      if (!(ev.data instanceof ArrayBuffer)) {
        settled = true;
        reject(new Error('non-binary frame'));
        return;
      }
      frames.push(new Uint8Array(ev.data));
      if (frames.length >= count) finish();
    };
    ws.onerror = () => {
      if (!settled) {
        settled = true;
        reject(new Error('websocket error'));
      }
    };
    ws.onclose = finish;
    if (count === 0) ws.onopen = finish;
  });

export interface CarContents {
  roots: string[];
  blocks: Map<string, Uint8Array>;
}

/** Reads a CAR and checks every block against its CID. */
export const readCar = async (bytes: Uint8Array): Promise<CarContents> => {
  const reader = CAR.fromUint8Array(bytes);
  const blocks = new Map<string, Uint8Array>();
  for (const entry of reader) {
    const expected = await CID.create(entry.cid.codec as 0x71, entry.bytes);
    if (!CID.equals(expected, entry.cid)) throw new Error(`block does not hash to its CID ${CID.toString(entry.cid)}`);
    blocks.set(CID.toString(entry.cid), entry.bytes);
  }
  return { roots: reader.roots.map((r) => r.$link), blocks };
};

export const didKeyCache = new Map<string, Promise<Uint8Array>>();

/** The #atproto public key from the DID document the simulator serves. */
export const publicKeyFor = (baseUrl: string, did: string): Promise<Uint8Array> => {
  let p = didKeyCache.get(`${baseUrl} ${did}`);
  if (p === undefined) {
    p = (async () => {
      const res = await fetch(`${baseUrl}/${did}`);
      if (res.status !== 200) throw new Error(`DID document ${did}: ${res.status}`);
      const doc = (await res.json()) as { verificationMethod: { id: string; type: string; publicKeyMultibase: string }[] };
      const vm = doc.verificationMethod.find((m) => m.id === `${did}#atproto`);
      if (vm === undefined) throw new Error('no #atproto key');
      const parsed = parsePublicMultikey(vm.publicKeyMultibase);
      if (parsed.type !== 'secp256k1') throw new Error('not k256');
      return parsed.publicKeyBytes;
    })();
    didKeyCache.set(`${baseUrl} ${did}`, p);
  }
  return p;
};

/** Verifies a commit block's signature with @atcute/crypto (independent of the native module). */
export const verifyCommit = async (commit: Record<string, unknown>, publicKey: Uint8Array): Promise<boolean> => {
  const { sig, ...unsigned } = commit;
  if (!CBOR.isBytes(sig)) return false;
  const key = await Secp256k1PublicKey.importRaw(publicKey);
  return key.verify(CBOR.fromBytes(sig), CBOR.encode(unsigned));
};

export const linkOf = (value: unknown): string | null =>
  typeof value === 'object' && value !== null && '$link' in value && typeof value.$link === 'string' ? value.$link : null;
