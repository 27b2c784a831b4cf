"""Checking a contract bundle offline (`dpa verify-bundle`): every file against the manifest's SHA-256, the
manifest against its detached signature, and the signing key against the keys the checker trusts."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dpa_service.audit.checkpoints import PublicKey, key_id_of, load_public_keys, signature_valid
from dpa_service.contracts.bundle import MANIFEST, PUBLIC_KEY, SIGNATURE


@dataclass
class BundleCheck:
    ok: bool = False
    files: int = 0
    key_id: str | None = None
    problems: list[str] = field(default_factory=list)


def check_bundle(path: Path, trusted: Mapping[str, PublicKey] | None) -> BundleCheck:
    """`trusted`: the seal keys by key id; None trusts the key inside the bundle (says nothing of who made it)."""
    result = BundleCheck()
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        result.problems.append(f"not a readable zip ({exc})")
        return result
    with archive:
        names = set(archive.namelist())
        missing = [n for n in (MANIFEST, SIGNATURE, PUBLIC_KEY) if n not in names]
        if missing:
            result.problems.append(f"missing {', '.join(missing)}")
            return result
        manifest_bytes = archive.read(MANIFEST)
        key = next(iter(load_public_keys([archive.read(PUBLIC_KEY)]).values()))
        result.key_id = key_id_of(key)
        if trusted is not None and result.key_id not in trusted:
            result.problems.append(f"signed by a key that is not the service's seal ({result.key_id[:16]})")
        elif not signature_valid(trusted[result.key_id] if trusted else key, archive.read(SIGNATURE), manifest_bytes):
            result.problems.append("bad signature: manifest.json is not as the service signed it")
        try:
            manifest = json.loads(manifest_bytes)
            listed = manifest["files"]
        except (ValueError, KeyError, TypeError):
            result.problems.append("manifest.json is not a bundle manifest")
            return result
        for entry in listed:
            name = entry.get("name") if isinstance(entry, dict) else None
            if name not in names:
                result.problems.append(f"{name}: listed in the manifest but not in the zip")
            elif hashlib.sha256(archive.read(name)).hexdigest() != entry.get("sha256"):
                result.problems.append(f"{name}: its SHA-256 does not match the manifest")
            else:
                result.files += 1
    result.ok = not result.problems
    return result
