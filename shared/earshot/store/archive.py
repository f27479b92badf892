"""The transcript archive: where transcript text lives, apart from the episode records.

A transcript runs to hundreds of KiB; a DynamoDB item stops at 400 KB and is paid per KB
written and read, so the text never goes into an item. The port, :class:`TranscriptArchive`,
keeps one episode's cues under its feed and episode id. Two adapters:

- :class:`S3TranscriptArchive` — deployed: one gzipped JSON object per episode in the
  transcript bucket (``template.yaml``: encrypted, private, lifecycle rules); the only
  module that talks to S3;
- ``earshot_local.sqlite_store.SqliteStore`` — local: a table in the same file.

Both store the same bytes (:func:`encode_cues`), so a transcript reads back identically
from either, and ``tests/store/test_archive_contract.py`` runs the same cases on both.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from abc import ABC, abstractmethod
from typing import Any

import boto3

from earshot.models import Cue

ARCHIVE_VERSION = 1
KEY_PREFIX = "transcripts/"


class TranscriptArchive(ABC):
    """Transcript cues by episode."""

    @abstractmethod
    def put_transcript(self, feed_id: str, episode_id: str, cues: list[Cue] | tuple[Cue, ...]) -> int:
        """Store (or replace) an episode's cues; returns the bytes stored."""

    @abstractmethod
    def get_transcript(self, feed_id: str, episode_id: str) -> list[Cue] | None:
        """An episode's cues, or None when none are stored."""


def encode_cues(cues: list[Cue] | tuple[Cue, ...]) -> bytes:
    """Cues as gzipped JSON (``[start_s, end_s, speaker, text]`` rows): a word-by-word
    transcript repeats its speaker on every row, which gzip folds away.

    >>> decode_cues(encode_cues([Cue(1.5, None, "Ann", "MLPs")]))
    [Cue(start_s=1.5, end_s=None, speaker='Ann', text='MLPs')]
    """
    payload = {"v": ARCHIVE_VERSION, "cues": [list(c) for c in cues]}
    return gzip.compress(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode(), mtime=0)


def decode_cues(blob: bytes) -> list[Cue]:
    data = json.loads(gzip.decompress(blob))
    return [Cue(*row) for row in data["cues"]]


def object_key(feed_id: str, episode_id: str) -> str:
    """The S3 key of an episode's transcript: episode ids are guids (URLs, anything), so
    the key holds a hash of it, under the feed so a feed's transcripts share a prefix.

    >>> object_key("f-1", "https://a.example/ep?1")
    'transcripts/f-1/d728e4ae27ab136c68a19727eece1774.json.gz'
    """
    digest = hashlib.sha256(episode_id.encode()).hexdigest()[:32]
    return f"{KEY_PREFIX}{feed_id}/{digest}.json.gz"


class S3TranscriptArchive(TranscriptArchive):
    """One object per episode in a bucket (thread-safe: a boto3 client)."""

    def __init__(self, bucket: str, *, client: Any | None = None) -> None:
        self.bucket = bucket
        self.client: Any = client or boto3.client("s3")

    def put_transcript(self, feed_id: str, episode_id: str, cues: list[Cue] | tuple[Cue, ...]) -> int:
        blob = encode_cues(cues)
        self.client.put_object(Bucket=self.bucket, Key=object_key(feed_id, episode_id), Body=blob,
                               ContentType="application/json", ContentEncoding="gzip")
        return len(blob)

    def get_transcript(self, feed_id: str, episode_id: str) -> list[Cue] | None:
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=object_key(feed_id, episode_id))
        except self.client.exceptions.NoSuchKey:
            return None
        return decode_cues(resp["Body"].read())
