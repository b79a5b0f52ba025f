"""Checks a running veche server's transparency log with an independent C2SP implementation.

tlog-scales (PyPI, Apache-2.0) reads the served checkpoint and tiles the way any tlog-tiles
mirror would: it verifies the checkpoint's signed-note signature with the verifier key, recomputes
the Merkle root from the hash tiles, reads entries from the entry bundles and checks inclusion
proofs it builds itself, checks the server's own tlog-proof receipts and consistency proofs, and
compares every entry bundle with the raw log. Exits non-zero on the first disagreement.

Usage: python tlog_scales_check.py BASE_URL OLD_CHECKPOINT_FILE
"""

import base64
import sys

import requests
from tlog_scales import tiles
from tlog_scales.backend import HttpBackend
from tlog_scales.reader import TilesReader
from tlog_scales.signing import Vkey
from tlog_scales.tlog import Checkpoint, ConsistencyProof, InclusionProof


def b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def check_tlog_proof(document: str, entry: bytes, vkey: Vkey) -> int:
    """Parses a C2SP tlog-proof, verifies its checkpoint and the inclusion of `entry`."""
    head, _, note = document.partition("\n\n")
    lines = head.split("\n")
    if lines[0] != "c2sp.org/tlog-proof@v1":
        raise SystemExit(f"not a tlog-proof: {lines[0]!r}")
    if not lines[1].startswith("index "):
        raise SystemExit(f"tlog-proof without an index line: {lines[1]!r}")
    index = int(lines[1].removeprefix("index "))
    hashes = [b64(line) for line in lines[2:] if line]
    checkpoint = Checkpoint.from_text(note)
    checkpoint.verify(vkey)
    InclusionProof(index, checkpoint.size, hashes).check(tiles.leaf_hash(entry), checkpoint.root_hash)
    return index


def main() -> None:
    base, old_checkpoint_path = sys.argv[1].rstrip("/"), sys.argv[2]
    session = requests.Session()
    head = session.get(f"{base}/v1/log", timeout=30).json()
    vkey = Vkey.from_string(head["verifier_key"])

    reader = TilesReader(HttpBackend(f"{base}/tlog"))
    checkpoint = reader.get_checkpoint()
    checkpoint.verify(vkey)
    root = reader.calculate_root_hash()
    if root != checkpoint.root_hash:
        raise SystemExit(f"root from tiles {root.hex()} != checkpoint root {checkpoint.root_hash.hex()}")
    print(f"checkpoint of {checkpoint.origin} at size {checkpoint.size} verifies; root recomputed from tiles")

    # Every entry, from the entry bundles, against the raw log and against an inclusion proof
    # that tlog-scales builds from the hash tiles.
    position = 0
    while position < checkpoint.size:
        page = session.get(f"{base}/v1/log/entries", params={"from": position, "limit": 1000}, timeout=30).json()
        for item in page["entries"]:
            if item["position"] >= checkpoint.size:
                break
            entry = reader.get_entry(item["position"])
            if entry != bytes.fromhex(item["entry"]):
                raise SystemExit(f"entry bundle and raw log differ at position {item['position']}")
            proof = reader.get_inclusion_proof(item["position"], checkpoint.size)
            proof.check(tiles.leaf_hash(entry), checkpoint.root_hash)
            position = item["position"] + 1
        if page["next_from"] is None:
            break
    print(f"{position} entries read from entry bundles, each proved included by tlog-scales")

    # Receipts: the server's C2SP tlog-proof for a few positions, checked independently.
    for index in sorted({0, checkpoint.size // 2, checkpoint.size - 1}):
        receipt = session.get(f"{base}/v1/receipts/{index}", timeout=30).json()
        entry = reader.get_entry(index)
        proved = check_tlog_proof(receipt["tlog_proof"], entry, vkey)
        if proved != index:
            raise SystemExit(f"the receipt for {index} proves index {proved}")
    print("the server's tlog-proof receipts verify")

    # Consistency from a checkpoint saved before the log grew, proved by the server and rebuilt
    # by tlog-scales from the tiles.
    with open(old_checkpoint_path, encoding="utf-8") as file:
        old = Checkpoint.from_text(file.read())
    old.verify(vkey)
    served = session.get(
        f"{base}/v1/log/proofs/consistency",
        params={"from": old.size, "to": checkpoint.size},
        timeout=30,
    ).json()
    ConsistencyProof(old.size, checkpoint.size, [b64(h) for h in served["proof"]]).check(
        old.root_hash, checkpoint.root_hash
    )
    reader.get_consistency_proof(old.size, checkpoint.size).check(old.root_hash, checkpoint.root_hash)
    print(f"the log at size {checkpoint.size} is consistent with the saved checkpoint at size {old.size}")


if __name__ == "__main__":
    main()
