// The browser's own checks: C2SP signed notes (Ed25519), RFC 6962 inclusion and consistency
// proofs. Everything here is pure: it takes bytes and text and says yes or no, so the Check page
// and the gossip witness share it and a test can drive it with changed inputs.
import { ed25519 } from "@noble/curves/ed25519.js";
import { sha256 } from "@noble/hashes/sha2.js";

const encoder = new TextEncoder();

export function fromBase64(text: string): Uint8Array {
  const raw = atob(text.trim());
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

export function fromHex(text: string): Uint8Array {
  if (!/^([0-9a-f]{2})*$/.test(text)) throw new Error("not lowercase hex");
  const bytes = new Uint8Array(text.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** A C2SP verifier key: `name+keyid+base64(0x01 ‖ public key)`. */
export interface LogKey {
  name: string;
  keyId: Uint8Array;
  publicKey: Uint8Array;
}

export function parseVerifierKey(text: string): LogKey {
  // The name holds no "+", the key id is hex; the base64 key itself may hold "+".
  const [name, idHex, ...rest] = text.trim().split("+");
  const encoded = rest.join("+");
  if (!name || !idHex || !encoded) throw new Error("a verifier key has three parts");
  const material = fromBase64(encoded);
  if (material.length !== 33 || material[0] !== 1) throw new Error("not an Ed25519 verifier key");
  const publicKey = material.slice(1);
  const keyId = fromHex(idHex);
  // The key id is derived from the name and the key: a mismatch means the line was altered.
  const expected = sha256(concat(encoder.encode(name + "\n"), material)).slice(0, 4);
  if (!equal(keyId, expected)) throw new Error("the key id does not match the key");
  return { name, keyId, publicKey };
}

/** A checkpoint: the signed note's text, its origin, size and root. */
export interface Checkpoint {
  note: string;
  origin: string;
  size: bigint;
  root: Uint8Array;
  body: string;
  signatures: { name: string; keyId: Uint8Array; signature: Uint8Array }[];
}

export function parseCheckpoint(note: string): Checkpoint {
  const split = note.lastIndexOf("\n\n");
  if (split < 0) throw new Error("a signed note has a blank line before its signatures");
  const body = note.slice(0, split + 1);
  const lines = body.split("\n");
  if (lines.length < 4) throw new Error("a checkpoint has an origin, a size and a root");
  const [origin, sizeText, rootText] = lines;
  if (!/^[0-9]+$/.test(sizeText)) throw new Error("the checkpoint's size is not a number");
  const root = fromBase64(rootText);
  if (root.length !== 32) throw new Error("the checkpoint's root is not 32 bytes");
  const signatures = note
    .slice(split + 2)
    .split("\n")
    .filter((line) => line.length > 0)
    .map((line) => {
      const match = /^\u2014 (\S+) (\S+)$/.exec(line);
      if (!match) throw new Error("a signature line is malformed");
      const blob = fromBase64(match[2]);
      if (blob.length < 5) throw new Error("a signature is too short");
      return { name: match[1], keyId: blob.slice(0, 4), signature: blob.slice(4) };
    });
  return { note, origin, size: BigInt(sizeText), root, body, signatures };
}

/** Whether the note carries a valid signature by `key` (strict RFC 8032 verification). */
export function signedBy(checkpoint: Checkpoint, key: LogKey): boolean {
  if (checkpoint.origin !== key.name) return false;
  return checkpoint.signatures.some((s) => {
    if (s.name !== key.name || !equal(s.keyId, key.keyId) || s.signature.length !== 64) return false;
    try {
      return ed25519.verify(s.signature, encoder.encode(checkpoint.body), key.publicKey, {
        zip215: false,
      });
    } catch {
      return false;
    }
  });
}

function node(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256(concat(Uint8Array.of(1), left, right));
}

export function leafHash(entry: Uint8Array): Uint8Array {
  return sha256(concat(Uint8Array.of(0), entry));
}

/** RFC 9162 §2.1.3.2: the root an inclusion proof leads to, or null if it cannot fit. */
export function inclusionRoot(
  index: bigint,
  size: bigint,
  leaf: Uint8Array,
  proof: Uint8Array[],
): Uint8Array | null {
  if (index >= size) return null;
  let fn = index;
  let sn = size - 1n;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0n) return null;
    if ((fn & 1n) === 1n || fn === sn) {
      r = node(p, r);
      while ((fn & 1n) === 0n && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      r = node(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n ? r : null;
}

export function verifyInclusion(
  index: bigint,
  size: bigint,
  leaf: Uint8Array,
  proof: Uint8Array[],
  root: Uint8Array,
): boolean {
  const computed = inclusionRoot(index, size, leaf, proof);
  return computed !== null && equal(computed, root);
}

/** RFC 9162 §2.1.4.2: whether `proof` shows the tree of `second` extends the tree of `first`. */
export function verifyConsistency(
  first: bigint,
  second: bigint,
  firstRoot: Uint8Array,
  secondRoot: Uint8Array,
  proof: Uint8Array[],
): boolean {
  if (first === 0n || first > second) return false;
  if (first === second) return proof.length === 0 && equal(firstRoot, secondRoot);
  let path = proof;
  if ((first & (first - 1n)) === 0n) path = [firstRoot, ...proof];
  if (path.length === 0) return false;
  let fn = first - 1n;
  let sn = second - 1n;
  while ((fn & 1n) === 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      fr = node(c, fr);
      sr = node(c, sr);
      while ((fn & 1n) === 0n && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      sr = node(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n && equal(fr, firstRoot) && equal(sr, secondRoot);
}
