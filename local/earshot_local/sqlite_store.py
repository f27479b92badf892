"""The SQLite adapter of the storage port: Earshot's local database, one file.

Habits (Datasette / sqlite-utils): WAL journal so readers never block the writer and a
reader never sees a half-written feed; a busy timeout so concurrent processes queue for
the write lock instead of failing; ``PRAGMA user_version`` plus migrations in code;
explicit indexes for each named query; short write transactions.

Durability: ``synchronous=NORMAL`` in WAL mode survives a killed process (kill -9) with
every committed transaction; only an OS crash or power loss may lose the last few.

Each thread has its own connection (sqlite3 connections are not shared across threads).
Rows keep the model as JSON (``data``) next to the columns that queries filter or sort
on, so a model field added later needs no migration.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from earshot.models import (
    BackfillJob,
    CandidateStatus,
    Cue,
    DiscoveryCandidate,
    Episode,
    FeedState,
    MatchedEpisode,
    SegmentProgress,
    Subscriber,
    TokenRecord,
    Topic,
    TranscriptState,
)
from earshot.store import Store, iso
from earshot.store.archive import TranscriptArchive, decode_cues, encode_cues
from earshot.store.port import EpisodePage, HostLease, lease_expiry_s, merge_feed_state, new_revision

UNDATED = "0000-00-00T00:00:00Z"
BUSY_TIMEOUT_MS = 60_000

# Each entry migrates the schema from version i to i + 1; never edit a shipped one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE feeds (
        feed_id        TEXT PRIMARY KEY,
        url            TEXT NOT NULL,
        status         TEXT NOT NULL,
        next_check_at  TEXT,
        data           TEXT NOT NULL
    );
    CREATE INDEX feeds_due ON feeds (next_check_at) WHERE status != 'gone' AND next_check_at IS NOT NULL;
    CREATE INDEX feeds_url ON feeds (url);

    CREATE TABLE episodes (
        feed_id        TEXT NOT NULL,
        episode_id     TEXT NOT NULL,
        content_hash   TEXT NOT NULL,
        first_seen_at  TEXT NOT NULL,
        data           TEXT NOT NULL,
        PRIMARY KEY (feed_id, episode_id)
    ) WITHOUT ROWID;

    CREATE TABLE topics (
        slug           TEXT PRIMARY KEY,
        data           TEXT NOT NULL
    );

    CREATE TABLE matches (
        topic          TEXT NOT NULL,
        feed_id        TEXT NOT NULL,
        episode_id     TEXT NOT NULL,
        published      TEXT NOT NULL,
        data           TEXT NOT NULL,
        PRIMARY KEY (topic, feed_id, episode_id)
    ) WITHOUT ROWID;
    CREATE INDEX matches_by_date ON matches (topic, published DESC, feed_id DESC, episode_id DESC);

    CREATE TABLE subscribers (
        address_hash   TEXT NOT NULL,
        topic          TEXT NOT NULL,
        status         TEXT NOT NULL,
        version        INTEGER NOT NULL,
        data           TEXT NOT NULL,
        PRIMARY KEY (address_hash, topic)
    ) WITHOUT ROWID;
    CREATE INDEX subscribers_confirmed ON subscribers (topic, address_hash) WHERE status = 'confirmed';

    CREATE TABLE confirm_counters (
        address_hash   TEXT NOT NULL,
        day            TEXT NOT NULL,
        sent           INTEGER NOT NULL,
        expires_at     INTEGER NOT NULL,
        PRIMARY KEY (address_hash, day)
    ) WITHOUT ROWID;

    CREATE TABLE send_claims (
        address_hash   TEXT NOT NULL,
        topic          TEXT NOT NULL,
        week           TEXT NOT NULL,
        state          TEXT NOT NULL,
        claimed_at     TEXT NOT NULL,
        finished_at    TEXT,
        message_id     TEXT,
        detail         TEXT,
        expires_at     INTEGER NOT NULL,
        PRIMARY KEY (address_hash, topic, week)
    ) WITHOUT ROWID;

    CREATE TABLE tokens (
        token_hash     TEXT PRIMARY KEY,
        data           TEXT NOT NULL,
        expires_at     INTEGER NOT NULL
    );

    CREATE TABLE rendered_digests (
        topic          TEXT NOT NULL,
        week           TEXT NOT NULL,
        payload        BLOB NOT NULL,
        expires_at     INTEGER NOT NULL,
        PRIMARY KEY (topic, week)
    ) WITHOUT ROWID;

    CREATE TABLE queue_messages (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        queue          TEXT NOT NULL,
        body           TEXT NOT NULL,
        enqueued_at    TEXT NOT NULL
    );
    CREATE INDEX queue_messages_by_queue ON queue_messages (queue, id);
    """,
    # 2: facts about this installation that one local command records for the others
    # (where `earshot serve` listens, so `earshot digest run` links there).
    """
    CREATE TABLE local_meta (
        key            TEXT PRIMARY KEY,
        value          TEXT NOT NULL
    ) WITHOUT ROWID;
    """,
    # 3: a claim keeps its unsubscribe token's hash (claim and token are written together).
    """
    ALTER TABLE send_claims ADD COLUMN token_hash TEXT;
    """,
    # 4: confirmation mails are counted in a rolling 24 h window, one row per mail.
    """
    DROP TABLE confirm_counters;
    CREATE TABLE confirmation_mails (
        address_hash   TEXT NOT NULL,
        request_id     TEXT NOT NULL,
        sent_at        INTEGER NOT NULL,
        expires_at     INTEGER NOT NULL,
        PRIMARY KEY (address_hash, request_id)
    ) WITHOUT ROWID;
    """,
    # 5: discovery: cached directory answers, and each topic's candidate feeds.
    """
    CREATE TABLE directory_answers (
        key            TEXT PRIMARY KEY,
        payload        TEXT NOT NULL,
        expires_at     INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE discovery_candidates (
        topic          TEXT NOT NULL,
        key            TEXT NOT NULL,
        status         TEXT NOT NULL,
        score          REAL NOT NULL,
        data           TEXT NOT NULL,
        PRIMARY KEY (topic, key)
    ) WITHOUT ROWID;
    """,
    # 6: publishers' transcripts: each episode's transcript state, and its cues (the
    # archive's gzipped JSON, as S3 holds it deployed); both go with their feed.
    """
    CREATE TABLE transcript_states (
        feed_id        TEXT NOT NULL,
        episode_id     TEXT NOT NULL,
        status         TEXT NOT NULL,
        data           TEXT NOT NULL,
        PRIMARY KEY (feed_id, episode_id)
    ) WITHOUT ROWID;

    CREATE TABLE transcripts (
        feed_id        TEXT NOT NULL,
        episode_id     TEXT NOT NULL,
        cues           BLOB NOT NULL,
        PRIMARY KEY (feed_id, episode_id)
    ) WITHOUT ROWID;
    """,
    # 7: backfills run in segments; a match remembers the run that wrote it, so stale
    # ones are dropped once every segment has finished.
    """
    ALTER TABLE matches ADD COLUMN backfill_run TEXT;
    CREATE TABLE backfills (
        slug           TEXT PRIMARY KEY,
        run_id         TEXT NOT NULL,
        data           TEXT NOT NULL
    ) WITHOUT ROWID;
    """,
    # 8: leases on each host's request slots, shared by every process on this database.
    """
    CREATE TABLE host_slots (
        host           TEXT NOT NULL,
        slot           INTEGER NOT NULL,
        holder         TEXT NOT NULL,
        expires_at     INTEGER NOT NULL,
        PRIMARY KEY (host, slot)
    ) WITHOUT ROWID;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class SchemaTooNew(RuntimeError):
    """The database was written by a newer Earshot; refuse rather than guess."""


def _is_holder_alive(holder: str) -> bool:
    """Whether the process that took a host slot lease (``pid:uuid``) still runs here."""
    pid_text, _, _ = holder.partition(":")
    if not pid_text.isdigit() or int(pid_text) == os.getpid():
        return True
    try:
        os.kill(int(pid_text), 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process, or no such pid
        return True
    return True


def _dump(model: Any) -> str:
    return model.model_dump_json()


class SqliteStore(Store, TranscriptArchive):
    """Every Earshot record in one SQLite file, and the transcript archive's text."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.name = str(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # this store's threads: one write transaction at a time
        self._migrate()

    # ------------------------------------------------------------ connections
    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            # isolation_level=None: no implicit transactions; writes say BEGIN IMMEDIATE.
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                   check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            self._local.conn = conn
            self._local.depth = 0
            with self._lock:
                self._connections.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (nested ones join the outer one): BEGIN IMMEDIATE takes the
        write lock up front, so a transaction never fails half-way on a lock upgrade."""
        conn = self._connect()
        if self._local.depth:
            self._local.depth += 1
            try:
                yield conn
            finally:
                self._local.depth -= 1
            return
        # Threads of this process queue for the write lock here, handed over the moment it
        # is released; SQLite's busy handler (which sleeps and polls, up to 100 ms a try)
        # is left to arbitrate between processes only.
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            self._local.depth = 1
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")
            finally:
                self._local.depth = 0

    def atomic(self) -> Any:
        return self._write()

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        conn = self._connect()
        return conn.execute(sql, tuple(params)).fetchall()

    def _migrate(self) -> None:
        with self._write() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise SchemaTooNew(f"{self.path} has schema {version}; this Earshot knows up to {SCHEMA_VERSION}")
            for step in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[step].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {step + 1}")

    def schema_version(self) -> int:
        return int(self._read("PRAGMA user_version")[0][0])

    def purge_expired(self, now: datetime) -> int:
        """Delete expired tokens, counters, claims and renderings (DynamoDB's TTL, locally)."""
        epoch = int(now.timestamp())
        removed = 0
        with self._write() as conn:
            for table in ("tokens", "confirmation_mails", "send_claims", "rendered_digests", "directory_answers"):
                removed += conn.execute(f"DELETE FROM {table} WHERE expires_at < ?", (epoch,)).rowcount
        return removed

    def get_meta(self, key: str) -> str | None:
        """A value recorded by a local command (not part of the storage port)."""
        rows = self._read("SELECT value FROM local_meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def put_meta(self, key: str, value: str) -> None:
        with self._write() as conn:
            conn.execute("INSERT INTO local_meta (key, value) VALUES (?, ?) "
                         "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))

    def counts(self) -> dict[str, int]:
        """Rows per kind, for ``earshot info``."""
        out = {}
        for key, sql in (("feeds", "SELECT count(*) FROM feeds"), ("episodes", "SELECT count(*) FROM episodes"),
                         ("topics", "SELECT count(*) FROM topics"),
                         ("subscribers", "SELECT count(*) FROM subscribers WHERE status = 'confirmed'")):
            out[key] = int(self._read(sql)[0][0])
        return out

    # -------------------------------------------------------------- host slots
    def acquire_host_slot(self, host: str, *, limit: int, lease_s: float, now: datetime) -> HostLease | None:
        """One short write transaction: read the host's live leases, take the lowest free
        slot. BEGIN IMMEDIATE serializes it with every other process on this file.

        The processes sharing a database file share a machine, so a lease also lapses
        when the process that took it is gone: a cron run killed mid-cycle does not make
        the next one wait out its leases."""
        now_s = math.floor(now.timestamp())
        expires_s = lease_expiry_s(now, lease_s)
        with self._write() as conn:
            live = {slot for slot, holder in conn.execute(
                "SELECT slot, holder FROM host_slots WHERE host = ? AND expires_at > ?", (host, now_s))
                if _is_holder_alive(holder)}
            free = next((slot for slot in range(limit) if slot not in live), None)
            if free is None:
                return None
            holder = f"{os.getpid()}:{uuid.uuid4().hex}"
            conn.execute("INSERT INTO host_slots (host, slot, holder, expires_at) VALUES (?, ?, ?, ?) "
                         "ON CONFLICT (host, slot) DO UPDATE SET holder = excluded.holder, "
                         "expires_at = excluded.expires_at", (host, free, holder, expires_s))
        return HostLease(host=host, slot=free, holder=holder, expires_at=datetime.fromtimestamp(expires_s, UTC))

    def release_host_slot(self, lease: HostLease, *, now: datetime) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM host_slots WHERE host = ? AND slot = ? AND holder = ?",
                         (lease.host, lease.slot, lease.holder))

    # ------------------------------------------------------------------ feeds
    @staticmethod
    def _feed_row(feed: FeedState) -> tuple[Any, ...]:
        next_check = iso(feed.next_check_at) if feed.status != "gone" else None
        return feed.feed_id, feed.url, feed.status, next_check, _dump(feed)

    def add_feed(self, feed: FeedState) -> bool:
        with self._write() as conn:
            cur = conn.execute("INSERT INTO feeds (feed_id, url, status, next_check_at, data) VALUES (?, ?, ?, ?, ?) "
                               "ON CONFLICT (feed_id) DO NOTHING", self._feed_row(feed))
        return cur.rowcount == 1

    def get_feed(self, feed_id: str) -> FeedState | None:
        rows = self._read("SELECT data FROM feeds WHERE feed_id = ?", (feed_id,))
        return FeedState.model_validate_json(rows[0][0]) if rows else None

    def save_feed_state(self, feed: FeedState, *, previous: FeedState | None = None) -> None:
        with self._write() as conn:
            rows = conn.execute("SELECT data FROM feeds WHERE feed_id = ?", (feed.feed_id,)).fetchall()
            if not rows:
                return  # removed meanwhile: never revived
            merged = merge_feed_state(FeedState.model_validate_json(rows[0][0]), feed)
            feed_id, url, status, next_check, data = self._feed_row(merged)
            conn.execute("UPDATE feeds SET url = ?, status = ?, next_check_at = ?, data = ? WHERE feed_id = ?",
                         (url, status, next_check, data, feed_id))

    def list_feeds(self) -> Iterator[FeedState]:
        for (data,) in self._read("SELECT data FROM feeds ORDER BY url"):
            yield FeedState.model_validate_json(data)

    def delete_feed(self, feed_id: str) -> bool:
        with self._write() as conn:
            slugs = [slug for (slug,) in conn.execute("SELECT DISTINCT topic FROM matches WHERE feed_id = ?",
                                                      (feed_id,)).fetchall()]
            conn.execute("DELETE FROM matches WHERE feed_id = ?", (feed_id,))
            for slug in slugs:
                self._revise_topic(conn, slug)
            conn.execute("DELETE FROM transcripts WHERE feed_id = ?", (feed_id,))
            conn.execute("DELETE FROM transcript_states WHERE feed_id = ?", (feed_id,))
            conn.execute("DELETE FROM episodes WHERE feed_id = ?", (feed_id,))
            cur = conn.execute("DELETE FROM feeds WHERE feed_id = ?", (feed_id,))
        return cur.rowcount == 1

    def due_feeds(self, now: datetime, *, include_not_due: bool = False) -> Iterator[FeedState]:
        sql = "SELECT data FROM feeds WHERE status != 'gone' AND next_check_at IS NOT NULL"
        params: tuple[Any, ...] = ()
        if not include_not_due:
            sql += " AND next_check_at <= ?"
            params = (iso(now),)
        for (data,) in self._read(sql + " ORDER BY next_check_at, feed_id", params):
            yield FeedState.model_validate_json(data)

    # --------------------------------------------------------------- episodes
    def episode_hashes(self, feed_id: str) -> dict[str, str]:
        return dict(self._read("SELECT episode_id, content_hash FROM episodes WHERE feed_id = ?", (feed_id,)))

    @staticmethod
    def _episode_json(feed_id: str, ep: Episode) -> str:
        return ep.model_copy(update={"feed_id": feed_id}).model_dump_json()

    def put_new_episodes(self, feed_id: str, episodes: list[Episode], now: datetime) -> None:
        # A re-delivered check may write the same new episodes again: the row is replaced
        # in place, keeping its first sighting.
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO episodes (feed_id, episode_id, content_hash, first_seen_at, data) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (feed_id, episode_id) DO UPDATE SET content_hash = excluded.content_hash, "
                "data = excluded.data",
                [(feed_id, ep.id, ep.content_hash, iso(now), self._episode_json(feed_id, ep)) for ep in episodes])

    def update_changed_episodes(self, feed_id: str, episodes: list[Episode], now: datetime) -> None:
        self.put_new_episodes(feed_id, episodes, now)  # the upsert keeps first_seen_at

    def list_episodes(self, feed_id: str) -> list[Episode]:
        return [Episode.model_validate_json(d) for (d,) in self._read(
            "SELECT data FROM episodes WHERE feed_id = ? ORDER BY episode_id", (feed_id,))]

    def iter_all_episodes(self) -> Iterator[Episode]:
        # Paged by key so a long backfill never holds a read transaction open for long.
        after = ("", "")
        while True:
            rows = self._read("SELECT feed_id, episode_id, data FROM episodes WHERE (feed_id, episode_id) > (?, ?) "
                              "ORDER BY feed_id, episode_id LIMIT 1000", after)
            if not rows:
                return
            for _feed, _ep, data in rows:
                yield Episode.model_validate_json(data)
            after = (rows[-1][0], rows[-1][1])

    # ------------------------------------------------------------ transcripts
    def get_episode(self, feed_id: str, episode_id: str) -> Episode | None:
        rows = self._read("SELECT data FROM episodes WHERE feed_id = ? AND episode_id = ?", (feed_id, episode_id))
        return Episode.model_validate_json(rows[0][0]) if rows else None

    def save_transcript_state(self, state: TranscriptState) -> None:
        with self._write() as conn:
            conn.execute("INSERT INTO transcript_states (feed_id, episode_id, status, data) VALUES (?, ?, ?, ?) "
                         "ON CONFLICT (feed_id, episode_id) DO UPDATE SET status = excluded.status, "
                         "data = excluded.data", (state.feed_id, state.episode_id, state.status, _dump(state)))

    def get_transcript_state(self, feed_id: str, episode_id: str) -> TranscriptState | None:
        rows = self._read("SELECT data FROM transcript_states WHERE feed_id = ? AND episode_id = ?",
                          (feed_id, episode_id))
        return TranscriptState.model_validate_json(rows[0][0]) if rows else None

    def iter_transcript_states(self) -> Iterator[TranscriptState]:
        for (data,) in self._read("SELECT data FROM transcript_states ORDER BY feed_id, episode_id"):
            yield TranscriptState.model_validate_json(data)

    # The TranscriptArchive port (S3 deployed): the same gzipped JSON, in a table.
    def put_transcript(self, feed_id: str, episode_id: str, cues: list[Cue] | tuple[Cue, ...]) -> int:
        blob = encode_cues(cues)
        with self._write() as conn:
            conn.execute("INSERT INTO transcripts (feed_id, episode_id, cues) VALUES (?, ?, ?) "
                         "ON CONFLICT (feed_id, episode_id) DO UPDATE SET cues = excluded.cues",
                         (feed_id, episode_id, blob))
        return len(blob)

    def get_transcript(self, feed_id: str, episode_id: str) -> list[Cue] | None:
        rows = self._read("SELECT cues FROM transcripts WHERE feed_id = ? AND episode_id = ?", (feed_id, episode_id))
        return decode_cues(rows[0][0]) if rows else None

    def episode_segment(self, segment: int, total_segments: int, *, cursor: str | None = None,
                        limit: int = 500) -> EpisodePage:
        # Feed ids are a hash (``f-`` + 16 hex digits, see ``feed_id_for``): equal slices
        # of that range are equal shares of the archive, read along the primary key.
        # The first and last slices are open-ended, so every id lands in exactly one.
        span = 16 ** 16
        low = "" if segment == 0 else f"f-{segment * span // total_segments:016x}"
        high = None if segment == total_segments - 1 else f"f-{(segment + 1) * span // total_segments:016x}"
        after = tuple(json.loads(cursor)) if cursor else (low, "")
        sql = ("SELECT feed_id, episode_id, data FROM episodes WHERE (feed_id, episode_id) > (?, ?) "
               "AND feed_id >= ?")
        params: list[Any] = [*after, low]
        if high is not None:
            sql += " AND feed_id < ?"
            params.append(high)
        rows = self._read(sql + " ORDER BY feed_id, episode_id LIMIT ?", [*params, limit])
        episodes = [Episode.model_validate_json(data) for _f, _e, data in rows]
        more = len(rows) == limit
        return EpisodePage(episodes, json.dumps([rows[-1][0], rows[-1][1]]) if more else None)

    def get_feeds(self, feed_ids: Iterable[str]) -> dict[str, FeedState]:
        ids = list(dict.fromkeys(feed_ids))
        out: dict[str, FeedState] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            rows = self._read(f"SELECT data FROM feeds WHERE feed_id IN ({','.join('?' * len(chunk))})", chunk)
            for (data,) in rows:
                feed = FeedState.model_validate_json(data)
                out[feed.feed_id] = feed
        return out

    # -------------------------------------------------------------- backfills
    def start_backfill(self, job: BackfillJob) -> None:
        with self._write() as conn:
            conn.execute("INSERT INTO backfills (slug, run_id, data) VALUES (?, ?, ?) ON CONFLICT (slug) DO UPDATE "
                         "SET run_id = excluded.run_id, data = excluded.data", (job.slug, job.run_id, _dump(job)))

    def get_backfill(self, slug: str) -> BackfillJob | None:
        rows = self._read("SELECT data FROM backfills WHERE slug = ?", (slug,))
        return BackfillJob.model_validate_json(rows[0][0]) if rows else None

    def save_segment_progress(self, slug: str, run_id: str, segment: int,
                              progress: SegmentProgress) -> BackfillJob | None:
        with self._write() as conn:
            rows = conn.execute("SELECT data FROM backfills WHERE slug = ? AND run_id = ?", (slug, run_id)).fetchall()
            if not rows:
                return None
            job = BackfillJob.model_validate_json(rows[0][0])
            job = job.model_copy(update={"segments": {**job.segments, segment: progress}})
            conn.execute("UPDATE backfills SET data = ? WHERE slug = ?", (_dump(job), slug))
        return job

    def finish_backfill(self, slug: str, run_id: str, *, removed: int, now: datetime) -> bool:
        with self._write() as conn:
            rows = conn.execute("SELECT data FROM backfills WHERE slug = ? AND run_id = ?", (slug, run_id)).fetchall()
            if not rows:
                return False
            job = BackfillJob.model_validate_json(rows[0][0])
            job = job.model_copy(update={"finished_at": now, "removed": removed})
            conn.execute("UPDATE backfills SET data = ? WHERE slug = ?", (_dump(job), slug))
        return True

    def first_seen_at(self, feed_id: str, episode_id: str) -> str | None:
        rows = self._read("SELECT first_seen_at FROM episodes WHERE feed_id = ? AND episode_id = ?",
                          (feed_id, episode_id))
        return rows[0][0] if rows else None

    # ----------------------------------------------------------------- topics
    @staticmethod
    def _revised(topic: Topic) -> str:
        """The topic as stored: every write of it is a change its page may show."""
        return _dump(topic.model_copy(update={"revision": new_revision(), "revised_at": datetime.now(UTC)}))

    @staticmethod
    def _revise_topic(conn: sqlite3.Connection, slug: str) -> None:
        """A fresh revision, in the transaction of the match writes it covers."""
        conn.execute("UPDATE topics SET data = json_set(data, '$.revision', ?, '$.revised_at', ?) WHERE slug = ?",
                     (new_revision(), datetime.now(UTC).isoformat().replace("+00:00", "Z"), slug))

    def create_topic(self, topic: Topic) -> bool:
        with self._write() as conn:
            cur = conn.execute("INSERT INTO topics (slug, data) VALUES (?, ?) ON CONFLICT (slug) DO NOTHING",
                               (topic.slug, self._revised(topic)))
        return cur.rowcount == 1

    def save_topic(self, topic: Topic) -> bool:
        with self._write() as conn:
            cur = conn.execute("UPDATE topics SET data = ? WHERE slug = ?", (self._revised(topic), topic.slug))
        return cur.rowcount == 1

    def get_topic(self, slug: str) -> Topic | None:
        rows = self._read("SELECT data FROM topics WHERE slug = ?", (slug,))
        return Topic.model_validate_json(rows[0][0]) if rows else None

    def list_topics(self) -> list[Topic]:
        return [Topic.model_validate_json(d) for (d,) in self._read("SELECT data FROM topics ORDER BY slug")]

    def delete_topic(self, slug: str) -> bool:
        with self._write() as conn:
            cur = conn.execute("DELETE FROM topics WHERE slug = ?", (slug,))
            conn.execute("DELETE FROM matches WHERE topic = ?", (slug,))
            conn.execute("DELETE FROM backfills WHERE slug = ?", (slug,))
        return cur.rowcount == 1

    # ---------------------------------------------------------------- matches
    def list_matches(self, slug: str, *, limit: int | None = None) -> list[MatchedEpisode]:
        sql = ("SELECT data FROM matches WHERE topic = ? "
               "ORDER BY published DESC, feed_id DESC, episode_id DESC")
        params: tuple[Any, ...] = (slug,)
        if limit is not None:
            sql += " LIMIT ?"
            params += (limit,)
        return [MatchedEpisode.model_validate_json(d) for (d,) in self._read(sql, params)]

    def count_matches(self, slug: str) -> int:
        return int(self._read("SELECT count(*) FROM matches WHERE topic = ?", (slug,))[0][0])

    @staticmethod
    def _match_rows(slug: str, matches: list[MatchedEpisode]) -> list[tuple[Any, ...]]:
        return [(slug, m.feed_id, m.episode_id, iso(m.published) or UNDATED, _dump(m)) for m in matches]

    _UPSERT_MATCH = ("INSERT INTO matches (topic, feed_id, episode_id, published, data) VALUES (?, ?, ?, ?, ?) "
                     "ON CONFLICT (topic, feed_id, episode_id) DO UPDATE SET published = excluded.published, "
                     "data = excluded.data")

    def replace_feed_matches(self, slug: str, feed_id: str, episode_ids: Iterable[str],
                             matches: list[MatchedEpisode]) -> int:
        keep = {m.episode_id for m in matches}
        stale = [(slug, feed_id, e) for e in set(episode_ids) - keep]
        with self._write() as conn:
            before = conn.total_changes
            conn.executemany("DELETE FROM matches WHERE topic = ? AND feed_id = ? AND episode_id = ?", stale)
            removed = conn.total_changes - before
            conn.executemany(self._UPSERT_MATCH, self._match_rows(slug, matches))
            if matches or removed:
                self._revise_topic(conn, slug)
        return removed

    def put_run_matches(self, slug: str, run_id: str, matches: list[MatchedEpisode]) -> None:
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO matches (topic, feed_id, episode_id, published, data, backfill_run) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (topic, feed_id, episode_id) DO UPDATE SET "
                "published = excluded.published, data = excluded.data, backfill_run = excluded.backfill_run",
                [(*row, run_id) for row in self._match_rows(slug, matches)])
            if matches:
                self._revise_topic(conn, slug)

    def drop_matches_outside_run(self, slug: str, run_id: str) -> int:
        with self._write() as conn:
            removed = int(conn.execute("DELETE FROM matches WHERE topic = ? AND backfill_run IS NOT ?",
                                       (slug, run_id)).rowcount)
            if removed:
                self._revise_topic(conn, slug)
        return removed

    def replace_topic_matches(self, slug: str, matches: list[MatchedEpisode]) -> int:
        with self._write() as conn:
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS keep_matches (feed_id TEXT, episode_id TEXT, "
                         "PRIMARY KEY (feed_id, episode_id))")
            conn.execute("DELETE FROM keep_matches")
            conn.executemany("INSERT OR IGNORE INTO keep_matches VALUES (?, ?)",
                             [(m.feed_id, m.episode_id) for m in matches])
            removed = conn.execute(
                "DELETE FROM matches WHERE topic = ? AND (feed_id, episode_id) NOT IN "
                "(SELECT feed_id, episode_id FROM keep_matches)", (slug,)).rowcount
            conn.executemany(self._UPSERT_MATCH, self._match_rows(slug, matches))
            conn.execute("DELETE FROM keep_matches")
            if matches or removed:
                self._revise_topic(conn, slug)
        return removed

    # ------------------------------------------------------------ subscribers
    def get_subscriber(self, address_hash: str, topic: str) -> Subscriber | None:
        rows = self._read("SELECT data FROM subscribers WHERE address_hash = ? AND topic = ?", (address_hash, topic))
        return Subscriber.model_validate_json(rows[0][0]) if rows else None

    def save_subscriber(self, sub: Subscriber) -> bool:
        stored = sub.model_copy(update={"version": sub.version + 1})
        row = (stored.address_hash, stored.topic, stored.status, stored.version, _dump(stored))
        with self._write() as conn:
            if sub.version == 0:
                cur = conn.execute("INSERT INTO subscribers (address_hash, topic, status, version, data) "
                                   "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", row)
            else:
                cur = conn.execute("UPDATE subscribers SET status = ?, version = ?, data = ? "
                                   "WHERE address_hash = ? AND topic = ? AND version = ?",
                                   (row[2], row[3], row[4], row[0], row[1], sub.version))
        return cur.rowcount == 1

    def subscriptions_of_address(self, address_hash: str) -> list[Subscriber]:
        return [Subscriber.model_validate_json(d) for (d,) in self._read(
            "SELECT data FROM subscribers WHERE address_hash = ? ORDER BY topic", (address_hash,))]

    def confirmed_subscribers(self, topic: str) -> Iterator[Subscriber]:
        for (data,) in self._read("SELECT data FROM subscribers WHERE topic = ? AND status = 'confirmed' "
                                  "ORDER BY address_hash", (topic,)):
            yield Subscriber.model_validate_json(data)

    def count_confirmation_mail(self, address_hash: str, request_id: str, *, now: datetime, window: timedelta,
                                limit: int) -> bool:
        since, at = int((now - window).timestamp()), int(now.timestamp())
        with self._write() as conn:
            conn.execute("DELETE FROM confirmation_mails WHERE address_hash = ? AND sent_at <= ?",
                         (address_hash, since))
            if conn.execute("SELECT 1 FROM confirmation_mails WHERE address_hash = ? AND request_id = ?",
                            (address_hash, request_id)).fetchall():
                return True
            (count,) = conn.execute("SELECT count(*) FROM confirmation_mails WHERE address_hash = ?",
                                    (address_hash,)).fetchone()
            if count >= limit:
                return False
            conn.execute("INSERT INTO confirmation_mails (address_hash, request_id, sent_at, expires_at) "
                         "VALUES (?, ?, ?, ?)", (address_hash, request_id, at, at + int(window.total_seconds())))
        return True

    # ----------------------------------------------------------------- tokens
    def put_token(self, record: TokenRecord) -> None:
        with self._write() as conn:
            self._put_token(conn, record)

    @staticmethod
    def _put_token(conn: sqlite3.Connection, record: TokenRecord) -> None:
        conn.execute("INSERT OR REPLACE INTO tokens (token_hash, data, expires_at) VALUES (?, ?, ?)",
                     (record.token_hash, _dump(record), int(record.expires_at.timestamp())))

    def get_token(self, token_hash: str) -> TokenRecord | None:
        rows = self._read("SELECT data FROM tokens WHERE token_hash = ?", (token_hash,))
        return TokenRecord.model_validate_json(rows[0][0]) if rows else None

    def delete_token(self, token_hash: str) -> bool:
        with self._write() as conn:
            return conn.execute("DELETE FROM tokens WHERE token_hash = ?", (token_hash,)).rowcount == 1

    # ------------------------------------------------------ digest send claims
    def claim_send(self, address_hash: str, topic: str, week: str, *, now: datetime, expires_at: int,
                   token: TokenRecord) -> bool:
        with self._write() as conn:
            cur = conn.execute("INSERT INTO send_claims (address_hash, topic, week, state, claimed_at, expires_at, "
                               "token_hash) VALUES (?, ?, ?, 'claimed', ?, ?, ?) ON CONFLICT DO NOTHING",
                               (address_hash, topic, week, iso(now), expires_at, token.token_hash))
            if cur.rowcount == 1:
                self._put_token(conn, token)
                return True
            rows = conn.execute("SELECT token_hash FROM send_claims WHERE address_hash = ? AND topic = ? AND week = ?",
                                (address_hash, topic, week)).fetchall()
        return bool(rows) and rows[0][0] == token.token_hash

    def finish_claim(self, address_hash: str, topic: str, week: str, *, state: str, now: datetime,
                     message_id: str | None = None, detail: str | None = None) -> None:
        with self._write() as conn:
            conn.execute("UPDATE send_claims SET state = ?, finished_at = ?, message_id = ?, detail = ? "
                         "WHERE address_hash = ? AND topic = ? AND week = ?",
                         (state, iso(now), message_id, detail, address_hash, topic, week))

    def release_claim(self, address_hash: str, topic: str, week: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM send_claims WHERE address_hash = ? AND topic = ? AND week = ? "
                         "AND state = 'claimed'", (address_hash, topic, week))

    def get_claim_state(self, address_hash: str, topic: str, week: str) -> str | None:
        rows = self._read("SELECT state FROM send_claims WHERE address_hash = ? AND topic = ? AND week = ?",
                          (address_hash, topic, week))
        return rows[0][0] if rows else None

    # -------------------------------------------------------- rendered digests
    def put_rendered_digest(self, topic: str, week: str, payload: bytes, *, expires_at: int) -> bool:
        with self._write() as conn:
            cur = conn.execute("INSERT INTO rendered_digests (topic, week, payload, expires_at) VALUES (?, ?, ?, ?) "
                               "ON CONFLICT DO NOTHING", (topic, week, payload, expires_at))
        return cur.rowcount == 1

    def get_rendered_digest(self, topic: str, week: str) -> bytes | None:
        rows = self._read("SELECT payload FROM rendered_digests WHERE topic = ? AND week = ?", (topic, week))
        return bytes(rows[0][0]) if rows else None

    # -------------------------------------------------------------- discovery
    def get_directory_answer(self, key: str, *, now: datetime) -> str | None:
        rows = self._read("SELECT payload FROM directory_answers WHERE key = ? AND expires_at > ?",
                          (key, int(now.timestamp())))
        return str(rows[0][0]) if rows else None

    def put_directory_answer(self, key: str, payload: str, *, expires_at: int) -> None:
        with self._write() as conn:
            conn.execute("INSERT INTO directory_answers (key, payload, expires_at) VALUES (?, ?, ?) "
                         "ON CONFLICT (key) DO UPDATE SET payload = excluded.payload, expires_at = excluded.expires_at",
                         (key, payload, expires_at))

    def record_candidates(self, slug: str, candidates: list[DiscoveryCandidate]) -> list[DiscoveryCandidate]:
        proposed = []
        with self._write() as conn:
            for found in candidates:
                found = found.model_copy(update={"status": "proposed"})
                cur = conn.execute(
                    "INSERT INTO discovery_candidates (topic, key, status, score, data) "
                    "VALUES (?, ?, 'proposed', ?, ?) "
                    "ON CONFLICT (topic, key) DO UPDATE SET score = excluded.score, data = excluded.data "
                    "WHERE discovery_candidates.status = 'proposed'",
                    (slug, found.key, found.score, _dump(found)))
                if cur.rowcount == 1:
                    proposed.append(found)
        return proposed

    def list_candidates(self, slug: str) -> list[DiscoveryCandidate]:
        return [DiscoveryCandidate.model_validate_json(d) for (d,) in self._read(
            "SELECT data FROM discovery_candidates WHERE topic = ? ORDER BY score DESC, key", (slug,))]

    def decide_candidate(self, slug: str, key: str, status: CandidateStatus, *, now: datetime) -> bool:
        with self._write() as conn:
            rows = conn.execute("SELECT data FROM discovery_candidates WHERE topic = ? AND key = ?",
                                (slug, key)).fetchall()
            if not rows:
                return False
            decided = DiscoveryCandidate.model_validate_json(rows[0][0]).model_copy(
                update={"status": status, "decided_at": now})
            conn.execute("UPDATE discovery_candidates SET status = ?, data = ? WHERE topic = ? AND key = ?",
                         (status, _dump(decided), slug, key))
        return True

    # ----------------------------------------------------------------- queues
    def enqueue(self, queue: str, bodies: list[dict[str, Any]], now: datetime, *, delay_s: int = 0) -> int:
        """Queue messages, each received no earlier than ``delay_s`` after ``now`` (as SQS's
        DelaySeconds; ``enqueued_at`` holds when a message becomes visible)."""
        with self._write() as conn:
            conn.executemany("INSERT INTO queue_messages (queue, body, enqueued_at) VALUES (?, ?, ?)",
                             [(queue, json.dumps(b, separators=(",", ":")), iso(now + timedelta(seconds=delay_s)))
                              for b in bodies])
        return len(bodies)

    def peek_messages(self, queue: str, limit: int, *, now: datetime | None = None) -> list[tuple[int, str]]:
        """The oldest messages visible at ``now`` (the wall clock by default)."""
        return [(int(i), b) for i, b in self._read(
            "SELECT id, body FROM queue_messages WHERE queue = ? AND enqueued_at <= ? ORDER BY id LIMIT ?",
            (queue, iso(datetime.now(UTC) if now is None else now), limit))]

    def delete_messages(self, ids: Iterable[int]) -> None:
        with self._write() as conn:
            conn.executemany("DELETE FROM queue_messages WHERE id = ?", [(i,) for i in ids])
