"""The checkpoint directory (`DPA_CHECKPOINT_DIR`, default `$DPA_VAR_DIR/checkpoints`), outside the database.

    <chain>.jsonl        one signed checkpoint per line, appended, never rewritten (`platform.jsonl`, `<tenant>.jsonl`)
    keys/<key_id>.pem    the certificate of each key that signed any of them, published once
    .lock                held by whichever process is writing a round

One file per chain keeps every read cheap with 10,000 tenants (a tenant's checkpoints, a chain's verification: one
file) and a round touches only the chains that moved. Several app processes share the directory: a round runs
under an exclusive `flock` on `.lock` (a process that finds it taken skips its round; the one holding it writes),
and each line goes out in one `O_APPEND` write, so no line is ever interleaved with another or overwritten.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dpa_service.audit.checkpoints import CHAIN_NAME, Checkpoint, CheckpointSigner, PublicKey, load_public_keys

_TAIL_BYTES = 4096  # a line is ~350 bytes: the last one is always in the file's last 4 KiB


@dataclass(frozen=True)
class Head:
    chain: str
    tenant_id: str | None
    seq: int
    hash: str


@dataclass
class RoundReport:
    written: int = 0
    unchanged: int = 0
    skipped: bool = False  # another process held the lock and wrote this round
    problems: list[str] = field(default_factory=list)  # chains behind their last checkpoint: tampering


class CheckpointFiles:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        # The last checkpoint this process knows of per chain, so a round reads only the files of chains that moved.
        self._last: dict[str, tuple[int, str]] = {}
        self._published: set[str] = set()

    def file_of(self, chain: str) -> Path:
        if not CHAIN_NAME.match(chain):  # the name becomes a path: never anything but a chain's
            raise ValueError(f"{chain!r} is not a chain name")
        return self.directory / f"{chain}.jsonl"

    def chains(self) -> list[str]:
        """Every chain with a checkpoint file (a chain gone from the database still has its checkpoints)."""
        if not self.directory.is_dir():
            return []
        return sorted(p.stem for p in self.directory.glob("*.jsonl") if CHAIN_NAME.match(p.stem))

    def read(self, chain: str) -> Iterator[tuple[int, Checkpoint | str]]:
        """Each line of the chain's file, numbered from 1: the checkpoint, or what makes the line not one."""
        path = self.file_of(chain)
        if not path.is_file():
            return
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if raw.strip():
                    yield number, parse_line(raw)

    def last(self, chain: str) -> Checkpoint | None:
        path = self.file_of(chain)
        try:
            with path.open("rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                handle.seek(max(0, size - _TAIL_BYTES))
                lines = [line for line in handle.read().split(b"\n") if line.strip()]
        except FileNotFoundError:
            return None
        for raw in reversed(lines):
            found = parse_line(raw)
            if isinstance(found, Checkpoint):
                return found
        return None

    def public_keys(self) -> Mapping[str, PublicKey]:
        """The published keys by id (what an offline verifier checks against; pin the one you trust)."""
        keys_dir = self.directory / "keys"
        if not keys_dir.is_dir():
            return {}
        return load_public_keys(p.read_bytes() for p in sorted(keys_dir.glob("*.pem")))

    def publish(self, signer: CheckpointSigner) -> None:
        """Write the signing certificate under `keys/` once, before the first checkpoint it signs."""
        if signer.key_id in self._published:
            return
        path = self.directory / "keys" / f"{signer.key_id}.pem"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_text(signer.certificate_pem)
            with contextlib.suppress(FileExistsError):  # another process published it first: the same bytes
                os.link(tmp, path)
            tmp.unlink()
        self._published.add(signer.key_id)

    @contextlib.contextmanager
    def locked(self, *, wait: float = 0.0) -> Iterator[bool]:
        """Hold the directory's round lock (True), or give up after `wait` seconds (False)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        yield False
                        return
                    time.sleep(0.05)
            yield True
        finally:
            os.close(fd)  # closing releases the lock

    def append(self, chain: str, checkpoint: Checkpoint) -> None:
        """Append one line in one write. No fsync per file (10,000 of them a round would take seconds): a crash
        loses at most the round's last lines, and the next round writes them again from the files' own state."""
        fd = os.open(self.file_of(chain), os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            data = checkpoint.line().encode()
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":  # a torn line from a crash: start on a fresh one
                data = b"\n" + data
            while data:
                data = data[os.write(fd, data) :]
        finally:
            os.close(fd)

    def record_moved(self, heads: list[Head], signer: CheckpointSigner, at: str) -> RoundReport:
        """Under the lock: a checkpoint for each chain whose head moved since its last one (blocking file I/O and
        signing: run in a thread)."""
        report = RoundReport()
        for head in heads:
            if head.seq == 0:
                continue
            current = (head.seq, head.hash)
            if self._last.get(head.chain) != current:  # unknown here, or moved: what does the file say?
                last = self.last(head.chain)
                if last is not None:
                    self._last[head.chain] = (last.seq, last.head_hash)
            known = self._last.get(head.chain)
            if known == current:
                report.unchanged += 1
                continue
            if known is not None and (known[0] > head.seq or known[0] == head.seq):
                report.problems.append(
                    f"{head.chain}: the database's head (seq {head.seq}, {head.hash}) is behind or differs from "
                    f"its last checkpoint (seq {known[0]}, {known[1]}): the chain was rewound or rewritten"
                )
                continue
            self.publish(signer)
            checkpoint = signer.sign(Checkpoint(head.chain, head.tenant_id, head.seq, head.hash, at))
            self.append(head.chain, checkpoint)
            self._last[head.chain] = current
            report.written += 1
        return report


def parse_line(raw: bytes) -> Checkpoint | str:
    try:
        return Checkpoint.parse(json.loads(raw))
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        return f"not a checkpoint: {exc}"


def checkpoints_in(path: Path) -> Iterator[tuple[str, Checkpoint | str]]:
    """The checkpoints of a file someone holds: JSON lines as the directory keeps them, or one JSON document (a
    saved `GET /api/v1/audit-events/checkpoints` page, `{items: [...]}`, or a single checkpoint); each labelled
    for a person (`line 3`, `item 2`)."""
    text = path.read_bytes()
    try:
        document = json.loads(text)
    except ValueError:
        document = None  # several lines: JSON lines
    if isinstance(document, dict) and isinstance(document.get("items"), list):
        for number, item in enumerate(document["items"], start=1):
            try:
                yield f"item {number}", Checkpoint.parse(item)
            except ValueError as exc:
                yield f"item {number}", f"not a checkpoint: {exc}"
        return
    for number, raw in enumerate(text.split(b"\n"), start=1):
        if raw.strip():
            yield f"line {number}", parse_line(raw)
