// Gossip: every visitor's browser is a small witness. It keeps the last checkpoint it verified
// for this log key and, on every visit, asks for a consistency proof from it to the checkpoint
// served now. A log that shrank or whose new tree does not extend the old one raises the alarm,
// with both signed checkpoints shown so the visitor can hand them to anyone.
import { json, text, type LogHead } from "./api";
import { fromBase64, parseCheckpoint, parseVerifierKey, signedBy, verifyConsistency, type Checkpoint, type LogKey } from "./verify";

export type Witness =
  | { kind: "first"; now: Checkpoint }
  | { kind: "ok"; now: Checkpoint; before: Checkpoint }
  | { kind: "rewound" | "forked"; now: Checkpoint; before: Checkpoint }
  | { kind: "rekeyed"; now: Checkpoint; before: string }
  | { kind: "bad"; note: string };

function storageKey(head: LogHead): string {
  return "veche.witness." + head.verifier_key;
}

/** The checkpoint served now, verified under the log key. */
export async function currentCheckpoint(key: LogKey): Promise<Checkpoint | null> {
  const note = await text("/v1/log/checkpoint");
  try {
    const checkpoint = parseCheckpoint(note);
    return signedBy(checkpoint, key) ? checkpoint : null;
  } catch {
    return null;
  }
}

async function extends_(before: Checkpoint, now: Checkpoint): Promise<boolean> {
  if (before.size === now.size) return verifyConsistency(before.size, now.size, before.root, now.root, []);
  const proof = await json<{ proof: string[] }>(`/v1/log/proofs/consistency?from=${before.size}&to=${now.size}`);
  return verifyConsistency(before.size, now.size, before.root, now.root, proof.proof.map(fromBase64));
}

export async function witness(head: LogHead): Promise<Witness> {
  const key = parseVerifierKey(head.verifier_key);
  const now = await currentCheckpoint(key);
  if (now === null) return { kind: "bad", note: await text("/v1/log/checkpoint") };
  const stored = localStorage.getItem(storageKey(head));
  let before: Checkpoint | null = null;
  try {
    before = stored ? parseCheckpoint(stored) : null;
    if (before && !signedBy(before, key)) before = null;
  } catch {
    before = null;
  }
  if (before === null) {
    // A log that comes back under another key escapes every consistency check: say so, with the
    // checkpoint kept under the old key.
    const others = Object.keys(localStorage).filter((k) => k.startsWith("veche.witness.") && k !== storageKey(head));
    localStorage.setItem(storageKey(head), now.note);
    if (others.length > 0) return { kind: "rekeyed", now, before: localStorage.getItem(others[0]) ?? "" };
    return { kind: "first", now };
  }
  if (now.size < before.size) return { kind: "rewound", now, before };
  let consistent = false;
  try {
    consistent = await extends_(before, now);
  } catch {
    consistent = false;
  }
  if (!consistent) return { kind: "forked", now, before };
  localStorage.setItem(storageKey(head), now.note);
  return { kind: "ok", now, before };
}
