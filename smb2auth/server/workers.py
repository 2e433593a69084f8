"""N processes serving one ServerConfig (`smb2auth serve --workers N`): a transport above `Smb2Server` that
forks, waits, and logs what its workers report. Linux (and any system with SO_REUSEPORT and fork).

Listening. For each address the parent binds one socket per worker, every one with SO_REUSEPORT on the same
port, before it forks (socket(7): the kernel hashes each new connection to one listener of the group). Each
worker accepts from its own queue only, so the load spreads evenly. One listening socket inherited by every
worker would wake every worker's epoll for each connection, the first to run would win it and asyncio accepts
up to its backlog per wake-up: the connections bunch up on whichever worker is awake. The parent keeps every
socket open: connections queued on a dead worker's socket wait for its successor, which serves the same
socket. (Linux lets only processes of the same effective uid join a SO_REUSEPORT group.)

Reporting. Each worker has a socketpair to the parent and sends on it, in order, its login events (stamped
with its pid: `LoginEvent.worker`) and its log records (length-prefixed JSON). The parent emits the events on
its EventLog (the `smb2auth.login` logger, then the callbacks) and hands the records to its own loggers, so
each worker's events reach the parent in the order they happened, and events of different workers in the
order they arrive. The socketpair is also the worker's lifeline: at EOF (the parent is gone, even by
SIGKILL) the worker stops.

Stopping. `stop()` (the CLI's SIGINT and SIGTERM handler) makes `serve_forever` send SIGTERM to every worker;
each closes its server (the events of the handshakes it abandons still reach the parent) and exits. The
parent reads each channel to its EOF, reaps every pid, and kills with SIGKILL a worker still running after
`stop_timeout` seconds. Workers ignore SIGINT: a terminal's ^C reaches the parent too, which stops them.

A worker that dies after it started serving is logged (ERROR: its pid and how it ended) and replaced by a new
one on the same sockets; the connections it held are lost. A worker that dies before it serves (its
authority could not be built, say) stops the pool: `WorkerError`.

Per worker. Each worker is a whole Smb2Server with its own ServerContext: the GlobalSessionTable (MS-SMB2
3.3.1.5), the pending-handshake count, the timeouts' sweeps and every limit of the ServerConfig
(max_connections, max_pending_handshakes, ...) are per worker; N workers accept N times the limits. A
PreviousSessionId (MS-SMB2 3.3.5.5.3) logs off the old session only if the new connection landed on the
worker holding it; elsewhere it is unknown and the old session lives until its connection closes or idles
out. A session binding (MS-SMB2 3.3.5.5.2) on another worker's session is STATUS_USER_SESSION_DELETED, on
its own worker STATUS_REQUEST_NOT_ACCEPTED (we do not bind). The configuration (ServerGuid included) is the
parent's, inherited by fork; the authority too, unless `authority` is a factory, which each worker calls
once it is forked: a file-backed authority reloaded in each worker, a remote one's connection per worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import selectors
import signal
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, NoReturn, TypeVar

from smb2auth.errors import Smb2AuthError
from smb2auth.events import EventLog, LoginEvent
from smb2auth.ntlm.authority import AnyAuthority
from smb2auth.server.aio import Smb2Server
from smb2auth.server.config import ServerConfig

T = TypeVar("T")

__all__ = ["AuthorityFactory", "Closer", "ProcessPool", "WorkerError", "WorkerPool", "usable_cores"]

log = logging.getLogger(__name__)

AuthorityFactory = Callable[[], AnyAuthority]

_LENGTH = struct.Struct(">I")
_BACKLOG = 1024
_RECORD_FIELDS = ("name", "levelno", "levelname", "pathname", "filename", "module", "lineno", "funcName",
                  "created", "msecs", "relativeCreated", "process", "processName", "thread", "threadName")
_FORMATTER = logging.Formatter()
_EVENT_FIELDS = tuple(f.name for f in dataclasses.fields(LoginEvent))


class WorkerError(Smb2AuthError):
    """A worker could not start serving; every worker of the pool has been stopped."""


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, as a container or taskset limits it), at least 1:
    what `--workers auto` starts."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# --- the worker's side ---------------------------------------------------------------------------------


class _Channel:
    """The worker's end of its socketpair: one length-prefixed JSON message per send, in order. Inside the
    event loop the messages of one loop iteration go out together, in one sendall when the loop next turns
    (a worker under load logs several logins per iteration: one syscall, and one wake-up of the parent, for
    all of them); outside it, and at `flush()`, at once."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._pending: list[bytes] = []

    def send(self, kind: str, body: dict[str, Any]) -> None:
        data = json.dumps([kind, body], default=str).encode()
        self._pending.append(_LENGTH.pack(len(data)) + data)
        if len(self._pending) > 1:
            return  # a flush is already scheduled
        try:
            asyncio.get_running_loop().call_soon(self.flush)
        except RuntimeError:  # no loop running in this thread
            self.flush()

    def flush(self) -> None:
        data, self._pending = b"".join(self._pending), []
        with contextlib.suppress(OSError):  # the parent is gone: the lifeline stops this worker
            self.sock.sendall(data)


class _ForwardEvents(EventLog):
    """A worker's EventLog: each event goes to the parent with the worker's pid, whose EventLog logs it."""

    def __init__(self, channel: _Channel) -> None:
        super().__init__(keep=0)
        self._channel = channel
        self._pid = os.getpid()

    def emit(self, event: LoginEvent) -> None:
        # The fields as they are (str, int, bool, None, tuples of str): asdict() would deep-copy each.
        body = {name: getattr(event, name) for name in _EVENT_FIELDS}
        body["worker"] = self._pid
        self._channel.send("event", body)


class _ForwardLogs(logging.Handler):
    """A worker's only log handler: each record, message formatted, goes to the parent's loggers."""

    def __init__(self, channel: _Channel) -> None:
        super().__init__()
        self._channel = channel

    def emit(self, record: logging.LogRecord) -> None:
        try:
            body = {name: getattr(record, name, None) for name in _RECORD_FIELDS}
            body["msg"] = record.getMessage()
            if record.exc_info:
                body["exc_text"] = _FORMATTER.formatException(record.exc_info)
            self._channel.send("log", body)
        except Exception:
            self.handleError(record)


Closer = Callable[[], Awaitable[None]]


async def _serve(start: Callable[[list[socket.socket], EventLog], Awaitable[Closer]],
                 sockets: list[socket.socket], channel: _Channel) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_reader(channel.sock.fileno(), stop.set)  # the parent never writes: readable means EOF
    close: Closer | None = None
    try:
        close = await start(sockets, _ForwardEvents(channel))
        channel.send("ready", {})
        await stop.wait()
    finally:
        loop.remove_reader(channel.sock.fileno())
        if close is not None:
            await close()
        channel.flush()  # the events of the handshakes the close abandoned


# --- the parent's side ---------------------------------------------------------------------------------


@dataclass(eq=False)
class _Worker:
    slot: int
    pid: int
    channel: socket.socket
    inbox: bytearray = field(default_factory=bytearray)
    ready: bool = False


def _ending(status: int | None) -> str:
    if status is None:
        return "exit status unknown"
    code = os.waitstatus_to_exitcode(status)
    if code >= 0:
        return f"exit status {code}"
    try:
        return f"signal {signal.Signals(-code).name}"
    except ValueError:
        return f"signal {-code}"


def _event_from(body: dict[str, Any]) -> LoginEvent:
    fields: dict[str, Any] = {name: tuple(v) if isinstance(v, list) else v for name, v in body.items()}
    return LoginEvent(**fields)


class ProcessPool:
    """`workers` forked processes, each serving its own listening socket of every address's SO_REUSEPORT
    group: `listen()` each address, `start()`, then `serve_forever()` until `stop()`. What a worker serves
    is `serve_worker`'s: a subclass starts its server there on the sockets, with the EventLog its login
    events go to (they arrive on `events` in the parent: logged on `smb2auth.login`, then the callbacks)."""

    def __init__(self, workers: int, *, events: EventLog | None = None, stop_timeout: float = 10.0) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        self.workers = workers
        self.events = events if events is not None else EventLog()
        self._stop_timeout = stop_timeout
        self._groups: list[list[socket.socket]] = []  # per address, one listening socket per slot
        self._running: dict[int, _Worker] = {}  # by slot
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._stopping = False
        self._failure: WorkerError | None = None
        self._closed = False

    @property
    def pids(self) -> list[int]:
        """The running workers' pids, by slot."""
        return [worker.pid for _, worker in sorted(self._running.items())]

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """Every (host, port) the pool listens on."""
        return [(str(name[0]), int(name[1])) for name in (group[0].getsockname() for group in self._groups)]

    def listen(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Bind `host`:`port` (0: a free port) once per worker, one SO_REUSEPORT group per address `host`
        resolves to; returns the first address bound. OSError as binding raises it."""
        if self._running or self._closed:
            raise RuntimeError("listen() comes before start()")
        first: tuple[str, int] | None = None
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        for family, kind, proto, _, address in dict.fromkeys(infos):
            group: list[socket.socket] = []
            try:
                for _ in range(self.workers):
                    sock = socket.socket(family, kind, proto)
                    group.append(sock)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                    if family == socket.AF_INET6:
                        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    if len(group) > 1:  # the port the first one got, when asked for any
                        address = (address[0], group[0].getsockname()[1], *address[2:])
                    try:
                        sock.bind(address)
                    except OSError as exc:
                        raise OSError(exc.errno, f"error while attempting to bind on address {address!r}:"
                                      f" {(exc.strerror or str(exc)).lower()}") from None
                    sock.listen(_BACKLOG)
            except BaseException:
                for sock in group:
                    sock.close()
                raise
            self._groups.append(group)
            name = group[0].getsockname()
            first = first or (str(name[0]), int(name[1]))
        if first is None:
            raise OSError(f"{host!r} resolves to no address")
        return first

    def start(self, timeout: float = 30.0) -> None:
        """Fork every worker and wait until each serves. WorkerError, every worker stopped, if one dies first
        or they do not all serve within `timeout` seconds."""
        if not self._groups:
            raise RuntimeError("call listen() first")
        try:
            for slot in range(self.workers):
                self._spawn(slot)
        except BaseException:  # fork failed (EAGAIN, ENOMEM): no worker stays behind
            self._shutdown()
            raise
        deadline = time.monotonic() + timeout
        while not self._stopping and not all(worker.ready for worker in self._running.values()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._failure = WorkerError(f"the workers did not all start serving within {timeout:g} s")
                break
            self._poll(remaining)
        if self._failure is not None:
            self._shutdown()
            raise self._failure

    def serve_forever(self) -> None:
        """The parent's loop: the workers' events and records, a new worker for one that dies. Returns once
        `stop()` was called and every worker has exited; WorkerError if a new worker could not serve."""
        try:
            while not self._stopping:
                self._poll(None)
        finally:
            self._shutdown()
        if self._failure is not None:
            raise self._failure

    def run_until_signalled(self, listen: Callable[[], T], started: Callable[[T], None]) -> None:
        """A command's whole run: SIGINT/SIGTERM stop the pool; `listen()` binds, the workers start,
        `started(what listen returned)` announces them, then serve_forever; closed and the signal handlers
        put back however it ends."""
        signals = (signal.SIGINT, signal.SIGTERM)
        handlers = {signum: signal.signal(signum, lambda *_: self.stop()) for signum in signals}
        try:
            bound = listen()
            self.start()
            started(bound)
            self.serve_forever()
        finally:
            self.close()
            for signum, handler in handlers.items():
                signal.signal(signum, handler)

    def stop(self) -> None:
        """Make serve_forever (or start) stop every worker; safe from a signal handler or another thread."""
        if not self._closed:
            with contextlib.suppress(BlockingIOError):  # a stop is already pending
                os.write(self._wake_w, b"\0")

    def close(self) -> None:
        """Stop every worker and close the sockets, for a pool no thread is serving."""
        if not self._closed:
            self._shutdown()

    def _spawn(self, slot: int) -> None:
        ours, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            ours.close()
            self._become_worker(slot, theirs)
        theirs.close()
        worker = _Worker(slot, pid, ours)
        self._running[slot] = worker
        self._selector.register(ours, selectors.EVENT_READ, worker)

    def _become_worker(self, slot: int, sock: socket.socket) -> NoReturn:
        code = 1
        try:
            # Only this worker's sockets stay open: another worker's channel held here would keep its
            # lifeline from ending with the parent.
            for other in self._running.values():
                other.channel.close()
            self._selector.close()
            os.close(self._wake_r)
            os.close(self._wake_w)
            for group in self._groups:
                for index, listener in enumerate(group):
                    if index != slot:
                        listener.close()
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.set_wakeup_fd(-1)
            asyncio.events._set_running_loop(None)  # forked inside a running loop: not ours (as 3.12 does)
            channel = _Channel(sock)
            logging.getLogger().handlers = [_ForwardLogs(channel)]
            asyncio.run(_serve(self.serve_worker, [group[slot] for group in self._groups], channel))
            code = 0
        except BaseException as exc:
            log.error("worker %d failed: %r", os.getpid(), exc, exc_info=log.isEnabledFor(logging.DEBUG))
        finally:
            os._exit(code)

    async def serve_worker(self, sockets: list[socket.socket], events: EventLog) -> Closer:
        """In a worker: start serving on `sockets`, login events to `events`; return what stops it."""
        raise NotImplementedError

    def _poll(self, timeout: float | None) -> None:
        for key, _ in self._selector.select(timeout):
            if key.data is None:
                with contextlib.suppress(BlockingIOError):
                    os.read(self._wake_r, 64)
                self._stopping = True
            else:
                self._read(key.data)

    def _read(self, worker: _Worker) -> None:
        try:
            data = worker.channel.recv(1 << 16)
        except ConnectionResetError:
            data = b""
        if not data:
            self._exited(worker)
            return
        inbox = worker.inbox
        inbox += data
        while len(inbox) >= _LENGTH.size:
            (size,) = _LENGTH.unpack_from(inbox)
            if len(inbox) < _LENGTH.size + size:
                break
            kind, body = json.loads(inbox[_LENGTH.size : _LENGTH.size + size])
            del inbox[: _LENGTH.size + size]
            self._dispatch(worker, kind, body)

    def _dispatch(self, worker: _Worker, kind: str, body: dict[str, Any]) -> None:
        if kind == "event":
            self.events.emit(_event_from(body))
        elif kind == "log":
            record = logging.makeLogRecord(body)
            logger = logging.getLogger(record.name)
            if logger.isEnabledFor(record.levelno):
                logger.handle(record)
        elif kind == "ready":
            worker.ready = True
            log.info("worker %d serving", worker.pid)

    def _exited(self, worker: _Worker) -> None:
        self._selector.unregister(worker.channel)
        worker.channel.close()
        del self._running[worker.slot]
        status: int | None
        try:
            status = os.waitpid(worker.pid, 0)[1]
        except ChildProcessError:  # reaped elsewhere (SIGCHLD ignored)
            status = None
        if self._stopping:
            log.debug("worker %d exited (%s)", worker.pid, _ending(status))
        elif not worker.ready:
            self._failure = WorkerError(f"worker {worker.pid} exited ({_ending(status)}) before it served")
            self._stopping = True
        else:
            log.error("worker %d exited (%s); starting another on its sockets", worker.pid, _ending(status))
            self._spawn(worker.slot)

    def _shutdown(self) -> None:
        self._stopping = True
        for worker in self._running.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGTERM)
        deadline = time.monotonic() + self._stop_timeout
        while self._running and (remaining := deadline - time.monotonic()) > 0:
            self._poll(remaining)
        for worker in self._running.values():
            log.warning("worker %d still running %g s after SIGTERM: killing it", worker.pid,
                        self._stop_timeout)
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGKILL)
        while self._running:
            self._poll(None)
        self._closed = True
        for group in self._groups:
            for sock in group:
                sock.close()
        self._selector.close()
        os.close(self._wake_r)
        os.close(self._wake_w)


class WorkerPool(ProcessPool):
    """`workers` processes serving `config`, each a whole Smb2Server. `authority`, if given, is called in
    each worker for the authority it serves with."""

    def __init__(
        self,
        config: ServerConfig,
        workers: int,
        *,
        authority: AuthorityFactory | None = None,
        events: EventLog | None = None,
        stop_timeout: float = 10.0,
    ) -> None:
        super().__init__(workers, events=events, stop_timeout=stop_timeout)
        self.config = config
        self._authority = authority

    async def serve_worker(self, sockets: list[socket.socket], events: EventLog) -> Closer:
        authority = self._authority() if self._authority is not None else self.config.authority
        server = Smb2Server(replace(self.config, authority=authority), events=events)
        for sock in sockets:
            await server.start(sock=sock)
        return server.close
