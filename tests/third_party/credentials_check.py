"""Verifies every credential of a closed anonymous poll from a veche log export, with the PyPI
`cryptography` package alone.

The export is a sequence of records, each a 2-byte big-endian length and that many bytes: the
signed checkpoint first, then every entry in position order. An entry is a 146-byte header and
the signed payload (JSON). A credential is a plain RSASSA-PSS signature (SHA-384, MGF1-SHA-384,
48-byte salt) over its randomizer followed by "veche credential v1\\n", the poll as a big-endian
u64 and the ballot key's 32 bytes, under the issuer key the poll's open_poll entry names.

Checks: the poll is anonymous and closed in the log; every cast_anonymous_ballot's credentials
verify (node issuer and co-issuer); distinct ballot keys never exceed the poll's credential
requests and equal the published turnout; a credential with one flipped bit is refused, so the
check is not vacuous. Exits non-zero on the first disagreement.

Usage: python credentials_check.py EXPORT_FILE POLL PUBLISHED_TURNOUT
"""

import json
import struct
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import load_der_public_key

ENTRY_HEADER_BYTES = 146
DOMAIN = b"veche credential v1\n"
PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)


def records(path: str) -> list[bytes]:
    data, found, at = open(path, "rb").read(), [], 0
    while at < len(data):
        (length,) = struct.unpack_from(">H", data, at)
        found.append(data[at + 2 : at + 2 + length])
        at += 2 + length
    if at != len(data):
        raise SystemExit("the export ends inside a record")
    return found


def verifies(issuer_key: str, credential: dict, message: bytes) -> bool:
    key = load_der_public_key(bytes.fromhex(issuer_key))
    try:
        key.verify(
            bytes.fromhex(credential["signature"]),
            bytes.fromhex(credential["randomizer"]) + message,
            PSS,
            hashes.SHA384(),
        )
        return True
    except InvalidSignature:
        return False


def flipped(credential: dict) -> dict:
    signature = bytearray(bytes.fromhex(credential["signature"]))
    signature[-1] ^= 1
    return {"randomizer": credential["randomizer"], "signature": signature.hex()}


def main() -> None:
    export, poll, published_turnout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    entries = records(export)[1:]  # the first record is the checkpoint
    definition, requests, ballot_keys, closed, checked = None, 0, set(), False, 0
    for position, entry in enumerate(entries):
        payload = json.loads(entry[ENTRY_HEADER_BYTES:])
        action, body = payload["action"], payload["body"]
        if position == poll:
            if action != "open_poll" or "anonymous" not in body:
                raise SystemExit(f"entry {poll} is not an anonymous poll's open_poll")
            definition = body
        if body.get("poll") != poll:
            continue
        if action == "request_credentials":
            requests += 1
        elif action == "close_poll":
            closed = True
        elif action == "cast_anonymous_ballot":
            checked += check_ballot(definition, payload, position)
            ballot_keys.add(payload["author"])
    if definition is None or not closed:
        raise SystemExit(f"poll {poll} is not opened and closed in the export")
    if checked == 0:
        raise SystemExit(f"poll {poll} has no anonymous ballot to check")
    if not len(ballot_keys) <= requests:
        raise SystemExit(f"{len(ballot_keys)} ballot keys counted, only {requests} requests")
    if len(ballot_keys) != published_turnout:
        raise SystemExit(f"{len(ballot_keys)} ballot keys, the server publishes {published_turnout}")
    print(
        f"cryptography: {checked} credentials of poll {poll} verify; {len(ballot_keys)} ballot keys"
        f" from {requests} requests; the published turnout is {published_turnout}"
    )


def check_ballot(definition: dict, payload: dict, position: int) -> int:
    """Verifies one ballot's credentials; returns how many it carried."""
    body = payload["body"]
    message = DOMAIN + body["poll"].to_bytes(8, "big") + bytes.fromhex(payload["author"])
    anonymous = definition["anonymous"]
    districts = definition["audience"].get("districts")
    index = districts.index(body["district"]) if districts else 0
    checks = [(anonymous["issuer_keys"][index], body["credential"])]
    if "co_issuer_key" in anonymous:
        if "co_issuer_credential" not in body:
            raise SystemExit(f"ballot at {position} lacks the co-issuer's credential")
        checks.append((anonymous["co_issuer_key"], body["co_issuer_credential"]))
    for issuer_key, credential in checks:
        if not verifies(issuer_key, credential, message):
            raise SystemExit(f"a credential of the ballot at {position} does not verify")
        if verifies(issuer_key, flipped(credential), message):
            raise SystemExit(f"a flipped credential of the ballot at {position} verifies")
    return len(checks)


if __name__ == "__main__":
    main()
