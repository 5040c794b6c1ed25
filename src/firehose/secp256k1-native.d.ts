// Types for the parts of the native `secp256k1` package (libsecp256k1 bindings) this project uses.
declare module 'secp256k1' {
  interface Secp256k1 {
    privateKeyVerify(privateKey: Uint8Array): boolean;
    publicKeyCreate(privateKey: Uint8Array, compressed?: boolean): Uint8Array;
    publicKeyConvert(publicKey: Uint8Array, compressed?: boolean): Uint8Array;
    publicKeyVerify(publicKey: Uint8Array): boolean;
    signatureNormalize(signature: Uint8Array): Uint8Array;
    ecdsaSign(message: Uint8Array, privateKey: Uint8Array): { signature: Uint8Array; recid: number };
    ecdsaVerify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
  }
  const secp256k1: Secp256k1;
  export default secp256k1;
}
