"""Politeness: how many requests Earshot as a whole has in flight to one host.

The standard: a host sees at most a few requests in flight from Earshot as a whole, not
per worker (a browser's six connections is the ceiling), fewer when it slows down or
answers 429/503; speed comes from many hosts at once. Three parts:

- **Pace** (pure): :func:`next_pace` turns one answer of a host into that host's next
  concurrency limit. A host starts at ``max_requests_per_host`` (2), gains one slot
  after a clean round of answers (as many clean answers as it has slots) up to
  ``host_concurrency_ceiling`` (6), drops to 1 on 429/503 or a timeout, halves on a
  connection failure or another 5xx, loses one when its latency rises well above the
  best it has shown, and is left alone until ``Retry-After`` has passed.
- **Leases** (global): every request slot a process uses is a lease on one of the host's
  slots ``0 .. limit-1`` in the store (:meth:`Store.acquire_host_slot`), so all
  processes and Lambdas on one database together hold at most the ceiling; a lease
  lapses after ``host_lease_s``, so a killed worker holds nothing for long.
- **Scheduling** (:class:`HostScheduler`): one coordinator thread per batch keeps, per
  host, as many leases as the host's pace allows and its queued checks need, and starts
  a check on the thread pool only when one of its host's leased slots is free and a
  thread is idle. A lease serves many checks of its host one after another (the fast
  path: one store round trip per batch of a host's feeds, not per request) and is given
  back once the host has nothing queued. A host whose slots are all taken elsewhere is
  not waited on: the coordinator moves on to other hosts and asks again later (backing
  off); with ``defer_after_s`` (the deployed worker) a check still without a slot after
  that long ends in :class:`HostBusy` so the caller can queue it again with a delay.

Only the fetch holds a slot (``FetchProbe.slot`` wraps the request): parsing and
storing a body happen after the slot is back, as with any per-host limit.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal, TypeVar
from urllib.parse import urlsplit

from earshot.errors import ConnectFailed, FetchTimeout, HttpStatusError, ProtocolFailed
from earshot.settings import Settings
from earshot.store import Store
from earshot.store.port import HostLease

logger = logging.getLogger(__name__)

T = TypeVar("T")

AnswerKind = Literal["ok", "throttled", "timeout", "failed"]

# Latency smoothing, and how far above its best a host's latency must rise (both as a
# factor and in seconds, so loopback jitter of a few ms never counts) to shed a slot.
LATENCY_WEIGHT = 0.3
RISING_FACTOR = 2.0
RISING_MIN_S = 0.25
# A host refused by the store (all its slots leased elsewhere) is asked again after this
# long, doubling per refusal up to the cap, with jitter so workers do not ask in step.
FIRST_RETRY_S = 0.25
MAX_RETRY_S = 4.0
# A Retry-After pauses the whole host at most this long: one feed's 503 with "come back
# tomorrow" must not stop a hosting platform's other feeds that long (that feed itself
# waits the whole Retry-After: ``schedule`` sets its next check).
MAX_HOST_PAUSE_S = 300.0
# Without ``defer_after_s`` (a local run), a Retry-After longer than this hands the host's
# remaining checks back (they stay due) rather than holding the whole run.
MAX_RETRY_AFTER_WAIT_S = 60.0
# A lease is used for a new request only while this much of it is left beyond one
# request's whole deadline.
LEASE_MARGIN_S = 5.0


# ------------------------------------------------------------------ pace (pure)
@dataclass(frozen=True)
class Answer:
    """How one request to a host went, as far as pacing cares."""

    kind: AnswerKind
    latency_s: float
    retry_after_s: float | None = None


@dataclass(frozen=True)
class HostPace:
    """A host's concurrency limit and what it was derived from."""

    limit: int
    ceiling: int
    latency_s: float | None = None  # smoothed latency of clean answers
    best_latency_s: float | None = None  # the lowest smoothed latency seen
    clean: int = 0  # clean answers since the limit last changed
    not_before_s: float = 0.0  # clock seconds: no new request before (Retry-After)

    @classmethod
    def start(cls, settings: Settings) -> "HostPace":
        ceiling = settings.host_concurrency_ceiling
        return cls(limit=min(settings.max_requests_per_host, ceiling), ceiling=ceiling)


def classify(exc: BaseException | None, latency_s: float) -> Answer:
    """What a fetch's outcome says about its host (not about the feed).

    >>> classify(None, 0.1).kind, classify(HttpStatusError(404, "x"), 0.1).kind
    ('ok', 'ok')
    >>> classify(HttpStatusError(503, "x", retry_after_s=30), 0.1)
    Answer(kind='throttled', latency_s=0.1, retry_after_s=30)
    """
    if isinstance(exc, HttpStatusError):
        if exc.status in (429, 503):
            return Answer("throttled", latency_s, exc.retry_after_s)
        return Answer("failed" if exc.status >= 500 else "ok", latency_s)
    if isinstance(exc, FetchTimeout):
        return Answer("timeout", latency_s)
    if isinstance(exc, (ConnectFailed, ProtocolFailed)):
        return Answer("failed", latency_s)
    # A 404, a body over the cap, a refused address: the host answered, or was never asked.
    return Answer("ok", latency_s)


def next_pace(pace: HostPace, answer: Answer, *, at_s: float) -> HostPace:
    """The host's pace after ``answer`` (received at clock second ``at_s``).

    >>> p = HostPace(limit=2, ceiling=6)
    >>> p = next_pace(next_pace(p, Answer("ok", 0.1), at_s=0), Answer("ok", 0.1), at_s=0)
    >>> p.limit
    3
    >>> next_pace(p, Answer("throttled", 0.1, retry_after_s=60), at_s=100).not_before_s
    160.0
    """
    if answer.kind == "throttled":
        wait_s = float(min(MAX_HOST_PAUSE_S, max(0.0, answer.retry_after_s or 0.0)))
        return replace(pace, limit=1, clean=0, not_before_s=max(pace.not_before_s, at_s + wait_s))
    if answer.kind == "timeout":
        return replace(pace, limit=1, clean=0)
    if answer.kind == "failed":
        return replace(pace, limit=max(1, pace.limit // 2), clean=0)
    latency_s = answer.latency_s if pace.latency_s is None else (
        pace.latency_s * (1 - LATENCY_WEIGHT) + answer.latency_s * LATENCY_WEIGHT)
    best_s = latency_s if pace.best_latency_s is None else min(pace.best_latency_s, latency_s)
    paced = replace(pace, latency_s=latency_s, best_latency_s=best_s)
    if latency_s > best_s * RISING_FACTOR and latency_s - best_s > RISING_MIN_S:
        return replace(paced, limit=max(1, pace.limit - 1), clean=0)
    clean = pace.clean + 1
    if clean >= pace.limit and pace.limit < pace.ceiling:
        return replace(paced, limit=pace.limit + 1, clean=0)
    return replace(paced, clean=clean)


class PaceBook:
    """Every host's pace in this process (kept across batches: a warm Lambda container,
    a second ``earshot run`` cycle). Thread-safe."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._clock = clock
        self._paces: dict[str, HostPace] = {}
        self._lock = threading.Lock()

    def get(self, host: str) -> HostPace:
        with self._lock:
            return self._paces.get(host) or HostPace.start(self._settings)

    def record(self, host: str, answer: Answer) -> HostPace:
        with self._lock:
            pace = self._paces.get(host) or HostPace.start(self._settings)
            self._paces[host] = updated = next_pace(pace, answer, at_s=self._clock())
            return updated


_books: dict[tuple[str, int, int], PaceBook] = {}
_books_lock = threading.Lock()


def pace_book(settings: Settings, store: Store) -> PaceBook:
    """The process's pace book for this store and these limits."""
    key = (store.name, settings.max_requests_per_host, settings.host_concurrency_ceiling)
    with _books_lock:
        return _books.setdefault(key, PaceBook(settings))


def forget_paces() -> None:
    """Drop every host's pace (``runtime.reset``: tests, a new local runtime)."""
    with _books_lock:
        _books.clear()


def host_of(url: str) -> str:
    """The host a URL's requests count against (lower-cased, port ignored).

    >>> host_of("https://Feeds.Example:8443/a.xml")
    'feeds.example'
    """
    return (urlsplit(url).hostname or "").lower()


def retry_backoff_s(refusals: int, rng: random.Random) -> float:
    """How long to wait before asking again for a slot of a host that refused
    ``refusals`` times in a row: doubling from FIRST_RETRY_S up to MAX_RETRY_S, jittered
    so workers do not ask in step."""
    return min(MAX_RETRY_S, FIRST_RETRY_S * 2.0 ** (refusals - 1)) * rng.uniform(0.75, 1.25)


# ------------------------------------------------------------------ scheduling
class HostBusy(Exception):
    """A check never started: its host's slots stayed taken (by other workers) or its
    host asked to be left alone (Retry-After) for longer than the caller would wait.
    Nothing was fetched or stored; the caller queues it again."""

    def __init__(self, host: str, retry_after_s: float) -> None:
        super().__init__(f"{host} is busy; retry in {retry_after_s:.0f} s")
        self.host = host
        self.retry_after_s = retry_after_s


@dataclass
class SlotStats:
    """Store round trips the host slots cost, to weigh against the checks they served."""

    acquired: int = 0
    refused: int = 0
    released: int = 0
    checks: int = 0

    @property
    def calls_per_check(self) -> float:
        return (self.acquired + self.refused + self.released) / self.checks if self.checks else 0.0


# A finished check: its future, and its result or its exception.
_Settled = tuple[Future[object], object, BaseException | None]


def _settle(finished: list[_Settled]) -> None:
    for future, result, exc in finished:
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)


@dataclass
class _Host:
    queue: deque[tuple[Future[object], Callable[[], object]]] = field(default_factory=deque)
    leases: list[HostLease] = field(default_factory=list)
    busy: int = 0  # checks started and not yet past their fetch
    retry_at_s: float = 0.0
    refusals: int = 0
    waiting_since_s: float | None = None


class HostScheduler:
    """Runs checks (one callable per URL) so that each host's requests stay within its
    leased slots; see the module docstring. One scheduler per batch."""

    def __init__(self, *, store: Store, settings: Settings, workers: int, book: PaceBook | None = None,
                 defer_after_s: float | None = None,
                 stats: SlotStats | None = None, clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._store = store
        self._settings = settings
        self._workers = max(1, workers)
        self._book = book or pace_book(settings, store)
        self._defer_after_s = defer_after_s
        self.stats = stats or SlotStats()
        self._clock = clock
        self._now = wall_clock
        self._cond = threading.Condition()
        self._hosts: dict[str, _Host] = defaultdict(_Host)
        self._free_runs: deque[tuple[Future[object], Callable[[], object]]] = deque()  # local files: no host
        self._running = 0
        self._rng = random.Random()
        self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="refresh")
        self._probe = FetchProbe(self._fetch_done)
        self._done: list[_Settled] = []  # finished checks the coordinator has yet to settle
        self._coordinator_gone = False

    # ---------------------------------------------------------------- public
    def submit_all(self, jobs: list[tuple[str, Callable[[FetchProbe], T]]]) -> list[Future[T]]:
        """Queue ``(url, job)`` pairs, each on its host's queue in the order given, and
        start the coordinator; one future per job, in order. ``job`` gets the probe whose
        ``slot(url)`` must wrap its request. Jobs for non-http(s) sources (local files)
        need no slot."""
        probe = self._probe
        futures: list[Future[T]] = []
        with self._cond:
            for url, job in jobs:
                future: Future[T] = Future()
                futures.append(future)
                entry = (future, _bind(job, probe))
                host = host_of(url) if url.startswith(("http://", "https://")) else ""
                (self._hosts[host].queue if host else self._free_runs).append(entry)  # type: ignore[arg-type]
            self.stats.checks += len(jobs)
        threading.Thread(target=self._coordinate, name="refresh-hosts", daemon=True).start()
        return futures

    # ---------------------------------------------------------- coordinator
    def _coordinate(self) -> None:
        """The one thread that takes and gives back leases and settles the futures: the
        last futures are settled only after every lease is given back, so a caller that
        closes the store once it has every result never races a release."""
        finished: list[_Settled] = []
        try:
            while True:
                with self._cond:
                    self._start_ready()
                    done, self._done = self._done, []
                    if not self._free_runs and self._running == 0 and not any(
                            h.queue or h.busy for h in self._hosts.values()):
                        finished = done
                        break
                    wanted, surplus = self._lease_plan()
                _settle(done)
                if surplus:
                    self._release(surplus)
                if wanted:
                    self._acquire(wanted)
                    continue  # new leases may let checks start at once
                with self._cond:
                    self._start_ready()
                    if not self._done:
                        self._cond.wait(self._wait_s())
        except BaseException as exc:  # a store failure: every queued check fails with it
            logger.exception("host scheduler failed")
            with self._cond:
                finished, self._done = self._done, []
                for queue in (*(host.queue for host in self._hosts.values()), self._free_runs):
                    while queue:
                        finished.append((queue.popleft()[0], None, exc))
                self._coordinator_gone = True  # checks still running settle themselves
        finally:
            self._release([lease for h in self._hosts.values() for lease in h.leases])
            self._pool.shutdown(wait=False)
            _settle(finished)

    def _start_ready(self) -> None:
        """Start every check that has a free thread, and a free leased slot on its host."""
        now_s = self._clock()
        while self._free_runs and self._running < self._workers:
            self._run(self._free_runs.popleft(), None)
        # Hosts with the most queued first: the big hosts are the long poles of a batch.
        for name, host in sorted(((n, h) for n, h in self._hosts.items() if h.queue),
                                 key=lambda kv: -len(kv[1].queue)):
            pace = self._book.get(name)
            if host.queue and pace.not_before_s > now_s:
                # Retry-After: the host's other checks wait too, or are handed back when
                # the wait is longer than the caller would wait.
                wait_s = pace.not_before_s - now_s
                if wait_s > (self._defer_after_s if self._defer_after_s is not None else MAX_RETRY_AFTER_WAIT_S):
                    self._defer(host, name, wait_s)
                continue
            while host.queue and self._running < self._workers and host.busy < min(
                    len(self._usable(host)), pace.limit):
                host.busy += 1
                self._run(host.queue.popleft(), name)
            if self._defer_after_s is not None and host.queue and not host.leases \
                    and host.waiting_since_s is not None and now_s - host.waiting_since_s > self._defer_after_s:
                self._defer(host, name, MAX_RETRY_S)

    def _defer(self, host: _Host, name: str, wait_s: float) -> None:
        while host.queue:
            self._done.append((host.queue.popleft()[0], None, HostBusy(name, wait_s)))

    def _usable(self, host: _Host) -> list[HostLease]:
        """Leases with time left for one more whole request."""
        now = self._now()
        need_s = min(self._settings.total_timeout_s + LEASE_MARGIN_S, self._settings.host_lease_s / 2)
        return [lease for lease in host.leases if lease.seconds_left(now) >= need_s]

    def _lease_plan(self) -> tuple[list[str], list[HostLease]]:
        """Hosts that need one more lease, and leases to give back: those too short for
        another request and those beyond what the host's queue and pace call for. A lease
        behind a request in flight is never given back."""
        now_s = self._clock()
        wanted: list[str] = []
        surplus: list[HostLease] = []
        for name, host in list(self._hosts.items()):
            if not host.leases and not host.queue:
                if not host.busy:
                    del self._hosts[name]  # done with: later rounds need not look at it
                continue
            usable = self._usable(host)
            stale = [lease for lease in host.leases if lease not in usable]
            pace = self._book.get(name)
            need = min(pace.limit, host.busy + len(host.queue))
            drop = stale[:max(0, len(host.leases) - host.busy)]
            extra = len(host.leases) - len(drop) - max(need, host.busy)
            drop += usable[::-1][:max(0, extra)]
            for lease in drop:
                host.leases.remove(lease)
            surplus += drop
            if host.queue and len(usable) - max(0, extra) < need and now_s >= host.retry_at_s \
                    and pace.not_before_s <= now_s:
                wanted.append(name)
        return wanted, surplus

    def _acquire(self, names: list[str]) -> None:
        for name in names:
            with self._cond:
                limit = self._book.get(name).limit
            lease = self._store.acquire_host_slot(name, limit=limit, lease_s=self._settings.host_lease_s,
                                                  now=self._now())
            with self._cond:
                host = self._hosts[name]
                now_s = self._clock()
                if lease is None:
                    self.stats.refused += 1
                    host.refusals += 1
                    if host.waiting_since_s is None:
                        host.waiting_since_s = now_s
                    host.retry_at_s = now_s + retry_backoff_s(host.refusals, self._rng)
                else:
                    self.stats.acquired += 1
                    host.leases.append(lease)
                    host.refusals, host.waiting_since_s = 0, None
                    self._start_ready()  # the host's checks need not wait for the other hosts' leases

    def _release(self, leases: list[HostLease]) -> None:
        for lease in leases:
            try:
                self._store.release_host_slot(lease, now=self._now())
                self.stats.released += 1
            except Exception:  # the lease lapses on its own
                logger.warning("could not release a host slot of %s", lease.host, exc_info=True)

    def _wait_s(self) -> float | None:
        now_s = self._clock()
        times = [h.retry_at_s for h in self._hosts.values() if h.queue and h.retry_at_s > now_s]
        times += [p.not_before_s for name, h in self._hosts.items()
                  if h.queue and (p := self._book.get(name)).not_before_s > now_s]
        # Leases lapse and Retry-After waits end without any thread noticing: wake for them.
        return max(0.01, min(times) - now_s) if times else 1.0

    # ------------------------------------------------------------- workers
    def _run(self, entry: tuple[Future[object], Callable[[], object]], host: str | None) -> None:
        self._running += 1
        future, job = entry
        self._pool.submit(self._work, future, job, host)

    def _work(self, future: Future[object], job: Callable[[], object], host: str | None) -> None:
        self._probe.begin(host)
        outcome: _Settled | None = None
        try:
            if future.set_running_or_notify_cancel():
                try:
                    outcome = (future, job(), None)
                except BaseException as exc:
                    outcome = (future, None, exc)
        finally:
            if self._probe.end() and host is not None:  # the check ended before any request
                self._fetch_done(host, None)
            with self._cond:
                self._running -= 1
                settle_here = self._coordinator_gone
                if outcome is not None and not settle_here:
                    self._done.append(outcome)  # the coordinator settles it
                self._cond.notify_all()
            if outcome is not None and settle_here:
                _settle([outcome])

    def _fetch_done(self, host: str, answer: Answer | None) -> None:
        """A check of ``host`` is past its request (or never made one): its slot is free."""
        if answer is not None:
            self._book.record(host, answer)
        with self._cond:
            self._hosts[host].busy -= 1
            self._cond.notify_all()


class FetchProbe:
    """What a check wraps its one request in (``with probe.slot(url): ...``): the host's
    slot is busy only during the request; its latency and outcome go to the host's pace."""

    def __init__(self, on_done: Callable[[str, Answer | None], None]) -> None:
        self._on_done = on_done
        self._local = threading.local()

    def begin(self, host: str | None) -> None:
        self._local.host = host

    def end(self) -> bool:
        """The check is over; True if its slot was not handed back by a request."""
        open_slot = getattr(self._local, "host", None) is not None
        self._local.host = None
        return open_slot

    @contextmanager
    def slot(self, url: str) -> Iterator[None]:
        host: str | None = getattr(self._local, "host", None)
        started_s = time.monotonic()
        answer: Answer | None = None
        try:
            yield
        except BaseException as exc:
            answer = classify(exc, time.monotonic() - started_s)
            raise
        else:
            answer = classify(None, time.monotonic() - started_s)
        finally:
            if host is not None:
                self._local.host = None
                self._on_done(host, answer)


def _bind(job: Callable[[FetchProbe], T], probe: FetchProbe) -> Callable[[], T]:
    return lambda: job(probe)


# ------------------------------------------------------------ one request at a time
class LeasedSlots:
    """Per-host slots for requests made outside the feed scheduler (a transcript, a
    discovery candidate's feed): each request holds one of its host's slots in the store,
    the very leases feed checks take, so a host sees Earshot's requests as one whoever
    makes them. Waits up to ``wait_s`` for a slot (backing off, jittered), then raises
    :class:`HostBusy`; a URL without a host (a local file) takes no slot."""

    def __init__(self, store: Store, settings: Settings, *, wait_s: float | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._store = store
        self._limit = settings.max_requests_per_host
        self._lease_s = settings.host_lease_s
        self._wait_s = settings.host_wait_s if wait_s is None else wait_s
        self._sleep = sleep
        self._rng = random.Random()
        self.stats = SlotStats()

    @contextmanager
    def slot(self, url: str) -> Iterator[None]:
        host = host_of(url)
        if not host:
            yield
            return
        lease = self._acquire(host)
        try:
            yield
        finally:
            self._store.release_host_slot(lease, now=datetime.now(UTC))
            self.stats.released += 1

    def _acquire(self, host: str) -> HostLease:
        deadline = time.monotonic() + self._wait_s
        refusals = 0
        while True:
            lease = self._store.acquire_host_slot(host, limit=self._limit, lease_s=self._lease_s,
                                                  now=datetime.now(UTC))
            if lease is not None:
                self.stats.acquired += 1
                return lease
            self.stats.refused += 1
            refusals += 1
            backoff_s = retry_backoff_s(refusals, self._rng)
            if time.monotonic() + backoff_s > deadline:
                raise HostBusy(host, backoff_s)
            self._sleep(backoff_s)
