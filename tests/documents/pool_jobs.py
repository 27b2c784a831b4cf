"""Toy jobs for the process pool tests: module-level, so that workers can import them by name."""

from __future__ import annotations

import os
import threading
import time
from typing import Any


class RenderFailed(Exception):
    """An exception with an extra attribute and an __init__ that takes more than it passes to super()."""

    def __init__(self, message: str, page: int) -> None:
        super().__init__(message)
        self.page = page

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.page), self.__dict__)


class Unpicklable(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()  # locks do not pickle


def square(x: int) -> int:
    return x * x


def burn(seconds: float) -> tuple[float, float]:
    """Spend `seconds` of this process's CPU time (not wall time, so that sharing a core shows up as slowness);
    return when it started and ended on the system-wide monotonic clock."""
    started = time.monotonic()
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
    return started, time.monotonic()


def nap(seconds: float, value: Any) -> Any:
    time.sleep(seconds)
    return value


def hang() -> None:
    while True:
        time.sleep(60)


def crash() -> None:
    os._exit(3)


def fail_with(exc: BaseException) -> None:
    raise exc


def fail_unpicklable(message: str) -> None:
    raise Unpicklable(message)


def pid() -> int:
    return os.getpid()


def slow_pid(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def unpicklable_result() -> object:
    return threading.Lock()


def hang_render(_job: object) -> None:
    """A render that never finishes (stands in for a pathological document)."""
    hang()


def crash_render(_job: object) -> None:
    """A render that takes its worker down (stands in for a crash inside the layout engine)."""
    crash()


def seal_certificate(config: object) -> bytes:
    """The seal certificate a worker loads (making the key on first use), as DER."""
    from dpa_service.documents.seal import SealConfig, signer_for

    assert isinstance(config, SealConfig)
    return bytes(signer_for(config).signing_cert.dump())
