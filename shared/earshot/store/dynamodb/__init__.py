"""The DynamoDB adapter of the storage port (:mod:`earshot.store.port`): the only code
that talks to DynamoDB. One table; the key layout is :mod:`.keys`; each item family has
its module (``feeds``, ``episodes``, ``topics``, ``subscriptions``, ``discovery``,
``transcripts``, ``hosts``) and
:class:`DynamoStore` is their facade.

- ``due`` is sparse and sharded: only feeds that should be checked carry ``due_pk``
  (``DUE#0`` .. ``DUE#<n-1>``, shard = hash of the feed id) so the hourly dispatcher
  reads n small partitions instead of one hot one. A gone feed (410) drops out of it.
  The index projects what the worker needs (url, validators, hash, counters), so the
  dispatcher's Query already carries everything and the worker needs no GetItem.
- ``type`` lists items of one kind (feeds by URL, topics by slug, a topic's confirmed
  subscribers) without a Scan. It projects only attributes that rarely change, so a
  routine feed check (new validators, next check) writes nothing to it.
- Episodes are never deleted: a feed that truncates its list leaves stored episodes as
  they are. New and changed episodes are batch-written (``BatchWriteItem``); a changed
  one keeps the ``first_seen_at`` read for it by ``BatchGetItem``.
- Idempotency uses a conditional-put claim per (topic, ISO week, address) rather than
  Powertools Idempotency: the key is the business key itself (not a payload hash), the
  claim sits in the subscriber's partition as the record of what was sent, and one batch
  message covers many recipients, each needing its own at-most-once guard.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import boto3

from earshot.store.dynamodb import keys
from earshot.store.dynamodb.base import serialize
from earshot.store.dynamodb.discovery import DiscoveryItems
from earshot.store.dynamodb.episodes import EpisodeItems
from earshot.store.dynamodb.feeds import FeedItems
from earshot.store.dynamodb.hosts import HostItems
from earshot.store.dynamodb.keys import DUE_PROJECTION, TYPE_INDEXED_FEED_ATTRIBUTES
from earshot.store.dynamodb.subscriptions import SubscriptionItems
from earshot.store.dynamodb.topics import TopicItems
from earshot.store.dynamodb.transcripts import TranscriptItems
from earshot.store.port import Store

__all__ = ["DUE_PROJECTION", "TYPE_INDEXED_FEED_ATTRIBUTES", "DynamoStore"]


class DynamoStore(FeedItems, EpisodeItems, TopicItems, SubscriptionItems, DiscoveryItems, TranscriptItems,
                  HostItems, Store):
    """DynamoDB access for every Earshot item. Thread-safe (uses a boto3 client)."""

    def __init__(self, table_name: str, *, client: Any | None = None, due_shards: int = 4) -> None:
        self.table_name = self.name = table_name
        self.client = client or boto3.client("dynamodb")
        self.due_shards = due_shards
        self._held, self._held_lock = {}, threading.Lock()

    def delete_feed(self, feed_id: str) -> bool:
        """The feed's matches in every topic, then its episodes, then the feed item (so a
        removal cut short leaves the feed listed, and running it again finishes it)."""
        if self.get_feed(feed_id) is None:
            return False
        for topic in self.list_topics():
            if dropped := self._match_keys(topic.slug, feed_id=feed_id):
                self._delete_matches(topic.slug, dropped)
                self._revise_topic(topic.slug)
        self._delete_transcript_items(feed_id)
        self._delete_episode_items(feed_id)
        self.client.delete_item(TableName=self.table_name, Key=serialize(keys.feed(feed_id)))
        return True

    def atomic(self) -> AbstractContextManager[None]:
        # Each DynamoDB write is durable on its own; see the port's note on write order.
        return nullcontext()
