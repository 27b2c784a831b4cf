"""A small bounded process pool for CPU-bound work (WeasyPrint layout, PDF composition, pyHanko sealing).

Threads do not help here: WeasyPrint holds the GIL, so a render in a thread stalls every other request. Each
worker is a process started by a forkserver (the parent has threads and an event loop, so plain fork is unsafe)
and talks to the parent over one duplex pipe, one job at a time. The parent waits for an answer with
`loop.add_reader` on the pipe and on the process sentinel, so the loop never blocks on a worker.

A worker belongs to exactly one job from the moment the job is sent until its answer has been read or the
worker has been killed, so an answer can never reach the wrong caller: a cancelled caller's job finishes in the
background before its worker serves anyone else, and a job past its timeout has its worker killed and replaced.

All bookkeeping runs on the event loop's thread and no asyncio object outlives the call that made it, so one pool
can serve several event loops in sequence (tests create and close an app per test), one loop at a time.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib
import multiprocessing
import os
import pickle
import signal
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

T = TypeVar("T")

SIZE_ENV = "DPA_RENDER_PROCESSES"
STARTUP_TIMEOUT = 60.0  # importing WeasyPrint on a busy machine can take seconds
CLOSE_GRACE = 2.0
PIPE_BUFFER = 32 * 1024  # below Linux's 64 KiB pipe buffer: smaller jobs are written at once
WORKER_NICENESS = 19  # below the serving process: the scheduler runs requests first, renders in the gaps

_context = multiprocessing.get_context("forkserver")
# Process.start() from several threads at once races on multiprocessing's process bookkeeping.
_start_lock = threading.Lock()


class PoolError(Exception):
    """The pool could not run a job, or the job's exception could not be sent back as itself."""


class JobTimedOut(PoolError):
    """The job ran past its timeout; its worker was killed and replaced."""


class WorkerCrashed(PoolError):
    """The worker process died during the job; it was replaced."""


class RemoteTraceback(Exception):
    """The worker's traceback, attached as `__cause__` of a job's exception (tracebacks do not pickle)."""

    def __str__(self) -> str:
        return f'\n"""\n{self.args[0]}"""'


def _name(fn: object) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


def _dump_error(exc: BaseException) -> tuple[bytes, str]:
    tb = "".join(traceback.format_exception(exc))
    try:
        data = pickle.dumps(exc, protocol=pickle.HIGHEST_PROTOCOL)
        # Many exceptions pickle but cannot be rebuilt (an __init__ taking more than it passes to super()):
        # find out here, where the type name and message are still at hand.
        pickle.loads(data)  # noqa: S301 - our own bytes
    except Exception:
        fallback = PoolError(f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}")
        data = pickle.dumps(fallback, protocol=pickle.HIGHEST_PROTOCOL)
    return data, tb


def _worker_main(conn: Connection, preload: Sequence[str]) -> None:
    # Ctrl-C reaches the whole process group; the parent decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A render may take a core for a second; a request being served should not wait behind it for the CPU.
    os.nice(WORKER_NICENESS)
    try:
        for module in preload:
            importlib.import_module(module)
    except Exception as exc:
        conn.send(("error", *_dump_error(exc)))
        return
    conn.send(("ready",))
    while True:
        try:
            job = conn.recv_bytes()
        except EOFError:
            return  # the pool closed its end (or the parent died)
        fn: Callable[..., Any] | None = None
        try:
            fn, args = pickle.loads(job)  # noqa: S301 - sent by our parent process
            reply: tuple[Any, ...] = ("ok", fn(*args))
        except Exception as exc:
            reply = ("error", *_dump_error(exc))
        try:
            conn.send(reply)
        except Exception as exc:  # the result does not pickle: nothing was written yet, so report that instead
            conn.send(("error", *_dump_error(PoolError(f"the result of {_name(fn)} cannot be sent back: {exc}"))))


@dataclass(frozen=True)
class PoolStats:
    size: int
    busy: int
    queued: int


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    conn: Connection


def _stop(workers: Iterable[_Worker], grace: float, *, close_fds: bool = True) -> None:
    """Terminate, wait up to `grace` seconds in all, then SIGKILL whatever is left (a job may have installed its
    own SIGTERM handler)."""
    workers = list(workers)
    for worker in workers:
        if close_fds:
            worker.conn.close()  # an idle worker sees EOF and exits by itself
        if grace > 0:
            worker.process.terminate()
    deadline = time.monotonic() + grace
    for worker in workers:
        worker.process.join(max(0.0, deadline - time.monotonic()))
        if worker.process.exitcode is None:
            worker.process.kill()
            worker.process.join(1.0)
        if close_fds:
            with contextlib.suppress(ValueError):  # still running after SIGKILL: leave its sentinel open
                worker.process.close()


def _fail(answer: asyncio.Future[Any], error: BaseException) -> None:
    if not answer.done():  # done: the caller was cancelled and nobody waits for this answer
        answer.set_exception(error)


class ProcessPool:
    def __init__(self, size: int | None = None, *, timeout: float = 120.0, preload: Sequence[str] = ()) -> None:
        size = max(1, os.cpu_count() or 1) if size is None else size
        if size < 1:
            raise ValueError("a process pool needs at least one worker")
        self._size = size
        self._timeout = timeout
        self._preload = tuple(preload)
        # A slot is an idle worker, or None for one to start when next needed; busy slots are out of the deque.
        self._idle: deque[_Worker | None] = deque([None] * size)
        self._waiters: deque[asyncio.Future[_Worker | None]] = deque()
        self._workers: set[_Worker] = set()  # every live worker, idle or busy, so that close() reaches them all
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def size(self) -> int:
        return self._size

    def stats(self) -> PoolStats:
        """How many workers are running a job and how many jobs wait for one, right now (for /metrics)."""
        if self._closed:
            return PoolStats(self._size, busy=0, queued=0)
        return PoolStats(self._size, busy=self._size - len(self._idle), queued=len(self._waiters))

    async def start(self) -> None:
        self._check_open()
        empty = sum(slot is None for slot in self._idle)
        self._idle = deque(slot for slot in self._idle if slot is not None)
        await asyncio.gather(*(self._fill_slot() for _ in range(empty)))

    # An outer asyncio.timeout() could only abandon the job; this timeout kills the worker that runs it.
    async def run(self, fn: Callable[..., T], /, *args: Any, timeout: float | None = None) -> T:  # noqa: ASYNC109
        self._check_open()
        try:
            job = pickle.dumps((fn, args), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise PoolError(f"cannot send {_name(fn)} to a worker (it must be a module-level function): {exc}") from exc
        slot = await self._acquire()
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[T] = loop.create_future()
        # The job lives in its own task: if our caller is cancelled, the worker is still drained before reuse.
        task = loop.create_task(self._serve(slot, job, self._timeout if timeout is None else timeout, answer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return await answer

    async def aclose(self) -> None:
        idle, busy = self._shut()
        # A busy worker's job task watches its pipe and reaps it once it is gone: only signal it from here.
        for worker in busy:
            worker.process.terminate()
        await asyncio.to_thread(_stop, idle, CLOSE_GRACE)
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=CLOSE_GRACE)
            if pending:
                for worker in busy:
                    with contextlib.suppress(ValueError):  # ValueError: already reaped and closed by its job
                        worker.process.kill()  # it ignored SIGTERM
                await asyncio.gather(*pending, return_exceptions=True)

    def close(self) -> None:
        idle, busy = self._shut()
        _stop(idle, CLOSE_GRACE)
        _stop(busy, CLOSE_GRACE, close_fds=False)

    def _shut(self) -> tuple[list[_Worker], list[_Worker]]:
        self._closed = True
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done() and not waiter.get_loop().is_closed():
                waiter.set_exception(PoolError("the process pool was closed"))
        idle = [slot for slot in self._idle if slot is not None]
        self._idle.clear()
        # A busy worker's pipe may still be registered with an event loop: only its job may close it.
        busy = [worker for worker in self._workers if worker not in idle]
        self._workers.clear()
        return idle, busy

    def _check_open(self) -> None:
        if self._closed:
            raise PoolError("the process pool is closed")

    async def _acquire(self) -> _Worker | None:
        if self._idle and not self._waiters:
            return self._idle.popleft()
        waiter: asyncio.Future[_Worker | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._release(waiter.result())  # handed a slot just as we were cancelled: pass it on
            raise
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    def _release(self, slot: _Worker | None) -> None:
        if self._closed:
            if slot is not None:
                self._discard(slot)
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done() and not waiter.get_loop().is_closed():
                waiter.set_result(slot)
                return
        self._idle.append(slot)

    def _discard(self, worker: _Worker) -> None:
        self._workers.discard(worker)
        _stop([worker], 0.0)

    async def _fill_slot(self) -> None:
        worker = None
        try:
            worker = await self._spawn()
        finally:
            self._release(worker)

    async def _serve(self, slot: _Worker | None, job: bytes, limit: float, answer: asyncio.Future[Any]) -> None:
        worker = slot
        try:
            if worker is not None and worker.process.exitcode is not None:
                self._discard(worker)  # it died while idle (the OOM killer, an operator)
                worker = None
            if worker is None:
                worker = await self._spawn()
            try:
                # A job bigger than the pipe's buffer (a PDF to seal) is only taken in as fast as the worker, which
                # runs at low priority, reads it: a thread waits for that, never the loop.
                if len(job) > PIPE_BUFFER:
                    await asyncio.to_thread(worker.conn.send_bytes, job)
                else:
                    worker.conn.send_bytes(job)
            except OSError as exc:
                raise WorkerCrashed(f"worker {worker.process.pid} is gone: {exc}") from exc
            data = await self._receive(worker, limit)
        except BaseException as exc:
            # Timed out, crashed, failed to start, or the loop is shutting down (cancelled): whatever state the
            # worker is in, it cannot serve again.
            if worker is not None:
                self._discard(worker)
            if self._closed:
                _fail(answer, PoolError("the process pool was closed during the job"))
            else:
                _fail(answer, exc if isinstance(exc, PoolError) else PoolError(f"the job could not run: {exc!r}"))
            if self._closed or not isinstance(exc, Exception):
                self._release(None)
            else:
                # Replace it now, so that the next job need not wait for a start-up; if that fails, the next job
                # tries again (and reports why).
                with contextlib.suppress(PoolError):
                    await self._fill_slot()
            if not isinstance(exc, Exception):
                raise
            return
        self._release(worker)
        try:
            kind, *payload = pickle.loads(data)  # noqa: S301 - from our own worker
            if kind == "ok":
                if not answer.done():
                    answer.set_result(payload[0])
                return
            error = pickle.loads(payload[0])  # noqa: S301 - from our own worker
            error.__cause__ = RemoteTraceback(payload[1])
        except Exception as exc:
            error = PoolError(f"cannot read the worker's answer: {exc!r}")
        _fail(answer, error)

    async def _spawn(self) -> _Worker:
        parent_end, child_end = _context.Pipe()
        process = _context.Process(target=_worker_main, args=(child_end, self._preload), name="dpa-pool-worker")
        process.daemon = True  # multiprocessing stops it at exit even if nobody closes the pool
        worker = _Worker(process, parent_end)
        # start() blocks until the forkserver has forked (the very first call also boots the forkserver).
        starting = asyncio.ensure_future(asyncio.to_thread(_start, process, child_end))
        try:
            await asyncio.shield(starting)
        except asyncio.CancelledError:
            starting.add_done_callback(lambda _: _stop([worker], 0.0))
            raise
        except Exception as exc:
            raise PoolError(f"cannot start a worker: {exc!r}") from exc
        self._workers.add(worker)
        try:
            kind, *payload = pickle.loads(await self._receive(worker, STARTUP_TIMEOUT))  # noqa: S301 - our worker
            if kind != "ready":  # a preload module failed to import
                raise PoolError(pickle.loads(payload[0]))  # noqa: S301 - our worker
        except BaseException as exc:
            self._discard(worker)
            if isinstance(exc, PoolError):
                raise PoolError(f"a worker failed to start: {exc}") from exc
            raise
        return worker

    async def _receive(self, worker: _Worker, limit: float) -> bytes:
        loop = asyncio.get_running_loop()
        readable: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not readable.done():
                readable.set_result(None)

        # The sentinel as well as the pipe: it fires even if the pipe is held open by something else.
        fds = (worker.conn.fileno(), worker.process.sentinel)
        for fd in fds:
            loop.add_reader(fd, wake)
        try:
            await asyncio.wait_for(readable, limit)
        except TimeoutError:
            raise JobTimedOut(f"the job took longer than {limit:g} s; its worker was killed") from None
        finally:
            for fd in fds:
                loop.remove_reader(fd)
        with contextlib.suppress(EOFError, OSError):
            if worker.conn.poll():
                # The worker is writing the rest right now; a thread waits for it (a PDF is many pipe-fulls), so
                # the loop never does.
                return await asyncio.to_thread(worker.conn.recv_bytes)
        worker.process.join(1.0)
        raise WorkerCrashed(f"worker {worker.process.pid} died during the job (exit code {worker.process.exitcode})")


def _start(process: BaseProcess, child_end: Connection) -> None:
    try:
        with _start_lock:
            process.start()
    finally:
        child_end.close()  # the worker has its own copy; ours would keep the pipe open after the worker died


class InThisProcess:
    """Document jobs in a thread of this process: for one-shot commands (see `make_documents_in_this_process`).

    A job past its timeout fails its caller as a pool job would, but its thread cannot be killed: it runs on until
    the command exits.
    """

    size = 1

    async def start(self) -> None:
        return None

    async def run(self, fn: Callable[..., T], /, *args: Any, timeout: float | None = None) -> T:  # noqa: ASYNC109
        try:
            return await asyncio.wait_for(asyncio.to_thread(fn, *args), timeout)
        except TimeoutError:
            raise JobTimedOut(f"the job took longer than {timeout:g} s") from None


_in_this_process = False


def in_this_process() -> bool:
    return _in_this_process


def make_documents_in_this_process() -> None:
    """From now on, document Renderers made without a pool of their own run their jobs in a thread of this process.

    For a command that serves no one (`dpa demo`, `dpa verify`, `dpa templates sync`): no event loop has requests
    to answer while a document is made, and the pool would cost more than the job. Starting it means a forkserver
    and a worker that imports WeasyPrint and pyHanko, about 3 s of CPU, and on a busy machine several more seconds
    of waiting, since its workers run at nice 19 (`dpa demo` on a loaded 2-core machine: 24.7 s with the pool, 7.2 s
    without).
    """
    global _in_this_process
    _in_this_process = True


_shared: ProcessPool | None = None
_shared_lock = threading.Lock()


def shared_pool(size: int | None = None, *, preload: Sequence[str] = ()) -> ProcessPool:
    """The process-wide pool, closed at exit. The first call decides its size (`size`, else DPA_RENDER_PROCESSES,
    else the CPU count) and what its workers import at start."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared._closed:
            raw = os.environ.get(SIZE_ENV, "").strip()
            try:
                size = size or (int(raw) if raw else None)
            except ValueError:
                raise ValueError(f"{SIZE_ENV} must be a whole number, not {raw!r}") from None
            _shared = ProcessPool(size, preload=preload)
            atexit.register(_shared.close)
        return _shared
