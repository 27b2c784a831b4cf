"""Signed checkpoints of the audit chains: what a chain's head was, when, signed with the service's seal key.

Certificate Transparency's signed tree heads (RFC 6962, section 3.5) are the model: a checkpoint commits the
service to `{chain, tenant_id, seq, head_hash, at}`, and anyone holding it can later show that the chain, as stored,
still has that hash at that seq. Whoever can rewrite the database (even its owner, triggers dropped) cannot make a
rewritten chain match a checkpoint without the seal's private key.

The signed message is the canonical JSON of the five fields (keys sorted, no spaces, ASCII), so any tool can
rebuild it: `jq -cjS 'del(.signature, .key_id)'` prints exactly those bytes. The signature is ECDSA P-256 with
SHA-256 (DER, base64) for the generated seal key, RSA PKCS#1 v1.5 with SHA-256 when the configured seal is an
RSA key; either verifies with `openssl dgst -sha256 -verify`. `key_id` is the SHA-256 of the public key's DER
SubjectPublicKeyInfo, as a CT log's id is (RFC 6962, section 3.2).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey
"""The keys that sign checkpoints: the seal's, ECDSA (as generated) or RSA (a configured PKCS#12 seal)."""

SIGNED_FIELDS = ("at", "chain", "head_hash", "seq", "tenant_id")
CHAIN_NAME = re.compile(r"^(platform|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")
_HASH = re.compile(r"^[0-9a-f]{64}$")
ECDSA_SHA256 = "ECDSA-P256-SHA256"
RSA_SHA256 = "RSA-PKCS1v15-SHA256"


@dataclass(frozen=True)
class Checkpoint:
    chain: str
    tenant_id: str | None
    seq: int
    head_hash: str
    at: str
    signature: str = ""
    key_id: str = ""

    def message(self) -> bytes:
        """The bytes that are signed: the canonical JSON of the five signed fields."""
        body = {name: getattr(self, name) for name in SIGNED_FIELDS}
        return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in (*SIGNED_FIELDS, "signature", "key_id")}

    def line(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=True) + "\n"

    @classmethod
    def parse(cls, value: Any) -> Checkpoint:
        """A checkpoint from its JSON object; ValueError naming what is wrong with it."""
        if not isinstance(value, dict):
            raise ValueError("not a JSON object")
        missing = [name for name in (*SIGNED_FIELDS, "signature", "key_id") if name not in value]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        chain, tenant_id, seq, head_hash = value["chain"], value["tenant_id"], value["seq"], value["head_hash"]
        if not isinstance(chain, str) or not CHAIN_NAME.match(chain):
            raise ValueError("chain is not a chain name")
        if tenant_id != (None if chain == "platform" else chain):
            raise ValueError("tenant_id does not match the chain")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            raise ValueError("seq is not a positive integer")
        if not isinstance(head_hash, str) or not _HASH.match(head_hash):
            raise ValueError("head_hash is not a lowercase SHA-256")
        if not all(isinstance(value[name], str) for name in ("at", "signature", "key_id")):
            raise ValueError("at, signature and key_id must be strings")
        return cls(chain, tenant_id, seq, head_hash, value["at"], value["signature"], value["key_id"])


def key_id_of(public_key: PublicKeyTypes) -> str:
    spki = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


def algorithm_of(public_key: PublicKeyTypes) -> str:
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return ECDSA_SHA256
    if isinstance(public_key, rsa.RSAPublicKey):
        return RSA_SHA256
    raise ValueError(f"a {type(public_key).__name__} cannot sign checkpoints (ECDSA or RSA keys only)")


class CheckpointSigner:
    """Signs checkpoints with the seal's private key; its certificate is what verifiers check against."""

    def __init__(self, key: PrivateKeyTypes, certificate: x509.Certificate) -> None:
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise ValueError(f"a {type(key).__name__} cannot sign checkpoints (ECDSA or RSA keys only)")
        if key_id_of(key.public_key()) != key_id_of(certificate.public_key()):
            raise ValueError("the seal certificate is not the seal key's")
        self._key = key
        self.certificate = certificate
        self.public_key: PublicKey = key.public_key()
        self.key_id = key_id_of(self.public_key)
        self.algorithm = algorithm_of(self.public_key)

    @property
    def certificate_pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def public_key_pem(self) -> str:
        return public_key_pem(self.public_key)

    def sign(self, checkpoint: Checkpoint) -> Checkpoint:
        signature = self.sign_bytes(checkpoint.message())
        return replace(checkpoint, signature=base64.b64encode(signature).decode(), key_id=self.key_id)

    def sign_bytes(self, message: bytes) -> bytes:
        """A detached signature of `message` (DER ECDSA, or PKCS#1 v1.5 for an RSA seal), SHA-256: what
        `openssl dgst -sha256 -verify KEY.pem -signature SIG FILE` checks (a contract bundle's manifest)."""
        if isinstance(self._key, ec.EllipticCurvePrivateKey):
            return self._key.sign(message, ec.ECDSA(hashes.SHA256()))
        return self._key.sign(message, padding.PKCS1v15(), hashes.SHA256())


def public_key_pem(public_key: PublicKeyTypes) -> str:
    pem = public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem.decode()


def load_public_keys(pems: Iterable[bytes]) -> dict[str, PublicKey]:
    """Public keys by key id, from PEM certificates or PEM public keys (ValueError for anything else)."""
    keys: dict[str, PublicKey] = {}
    for pem in pems:
        if b"BEGIN CERTIFICATE" in pem:
            key: PublicKeyTypes = x509.load_pem_x509_certificate(pem).public_key()
        else:
            key = serialization.load_pem_public_key(pem)
        if not isinstance(key, PublicKey):
            raise ValueError(f"a {type(key).__name__} cannot sign checkpoints (ECDSA or RSA keys only)")
        keys[key_id_of(key)] = key
    return keys


def signature_problem(checkpoint: Checkpoint, keys: Mapping[str, PublicKey]) -> str | None:
    """None when `checkpoint` is signed by one of `keys`; otherwise what is wrong, for a person to read."""
    key = keys.get(checkpoint.key_id)
    if key is None:
        return f"signed by an unknown key ({checkpoint.key_id[:16] or 'none'}), not the service's"
    try:
        signature = base64.b64decode(checkpoint.signature, validate=True)
    except (binascii.Error, ValueError):
        return "the signature is not base64"
    if not signature_valid(key, signature, checkpoint.message()):
        return "bad signature: the checkpoint was not signed as it reads (forged or altered)"
    return None


def signature_valid(key: PublicKey, signature: bytes, message: bytes) -> bool:
    """Does `signature` (as `CheckpointSigner.sign_bytes` makes it) sign `message` with `key`?"""
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        else:
            key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True
