"""The seal's key is made once, however many processes start on a fresh `var/` at the same moment."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dpa_service.documents.pool import ProcessPool
from dpa_service.documents.seal import SealConfig, signer_for
from tests.documents import pool_jobs


async def test_processes_starting_together_agree_on_one_seal(tmp_path: Path) -> None:
    config = SealConfig(keys_dir=tmp_path / "keys", organization="Test Processor Ltd")
    pool = ProcessPool(2, timeout=60)
    try:
        seen = await asyncio.gather(*(pool.run(pool_jobs.seal_certificate, config) for _ in range(4)))
    finally:
        await pool.aclose()
    assert len(set(seen)) == 1, "every worker loaded the same certificate"
    assert bytes(signer_for(config).signing_cert.dump()) == seen[0], "and so does this process"


def test_a_key_left_without_its_certificate_gets_one(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    (keys / "seal.key.pem").write_bytes(pem)  # a process died between writing the key and its certificate
    signer = signer_for(SealConfig(keys_dir=keys, organization="Test Processor Ltd"))
    assert signer.signing_cert.public_key.dump() == _public_der(key)


def _public_der(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
