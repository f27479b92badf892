"""Feed items: a feed's state, the sparse sharded ``due`` index the dispatcher reads."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from earshot.models import FeedState
from earshot.store.dynamodb import keys
from earshot.store.dynamodb.base import DynamoTable, deserialize, serialize
from earshot.store.port import CLEARED_WHEN_EMPTY, iso


class FeedItems(DynamoTable):
    # ------------------------------------------------------------------ feeds
    def _feed_item(self, feed: FeedState) -> dict[str, Any]:
        data = feed.model_dump(mode="json")
        for key in ("last_checked_at", "next_check_at", "created_at", "last_new_episode_at"):
            data[key] = iso(getattr(feed, key))
        item = {**keys.feed(feed.feed_id), "type_pk": "FEED", "type_sk": feed.url, **data}
        if feed.status != "gone" and feed.next_check_at is not None:
            item["due_pk"] = keys.due_pk(keys.shard_for(feed.feed_id, self.due_shards))
            item["due_sk"] = iso(feed.next_check_at)
        return item

    @staticmethod
    def _feed_from_item(item: dict[str, Any]) -> FeedState:
        data = deserialize(item)
        return FeedState.model_validate(
            {k: v for k, v in data.items() if k in FeedState.model_fields}
        )

    def add_feed(self, feed: FeedState) -> bool:
        """Insert a feed; False if it already exists (nothing changes then)."""
        return self._if(
            "put_item", Item=serialize(self._feed_item(feed)),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def get_feed(self, feed_id: str) -> FeedState | None:
        resp = self.client.get_item(
            TableName=self.table_name, Key=serialize(keys.feed(feed_id))
        )
        return self._feed_from_item(resp["Item"]) if "Item" in resp else None

    def save_feed_state(self, feed: FeedState, *, previous: FeedState | None = None) -> None:
        """Write the feed's state after a check: one UpdateItem, the only write of a warm check.

        With ``previous`` (the state the check started from), the url and title (which the
        ``type`` index keys and projects) are left out when unchanged, so a routine check does
        not rewrite them in that index. The status is always written: the check's copy of it
        may be stale (a redelivered message), and the stored one must end right.
        Conditional on the feed still existing, so a feed removed meanwhile is not revived.
        """
        item = self._feed_item(feed)
        if previous is not None:
            before = self._feed_item(previous)
            for key in keys.TYPE_INDEXED_FEED_ATTRIBUTES:
                if item.get(key) == before.get(key):
                    item.pop(key, None)
        cleared = [k for k in (*CLEARED_WHEN_EMPTY, "due_pk", "due_sk") if item.get(k) in (None, "")]
        try:
            self._update(item, remove=cleared, condition="attribute_exists(pk)")
        except self.client.exceptions.ConditionalCheckFailedException:
            return  # removed meanwhile: never revived

    def get_feeds(self, feed_ids: Iterable[str]) -> dict[str, FeedState]:
        """BatchGetItem, 100 keys a request."""
        wanted = [serialize(keys.feed(fid)) for fid in dict.fromkeys(feed_ids)]
        feeds = (self._feed_from_item(item) for item in self._batch_get(wanted))
        return {feed.feed_id: feed for feed in feeds}

    def list_feeds(self) -> Iterator[FeedState]:
        """Every feed, whole: keys from the ``type`` index (which projects only slowly
        changing attributes, so checks do not write to it), items by BatchGetItem."""
        found = [{"pk": item["pk"], "sk": item["sk"]} for item in self._query_all(
            IndexName=keys.TYPE_INDEX,
            KeyConditionExpression="type_pk = :t",
            ExpressionAttributeValues=serialize({":t": "FEED"}),
            ProjectionExpression="pk, sk",
        )]
        for item in self._batch_get(found):
            yield self._feed_from_item(item)

    def due_feeds(self, now: datetime, *, include_not_due: bool = False) -> Iterator[FeedState]:
        """Feeds whose ``next_check_at`` has passed, most overdue first: each shard of the
        due index is read in key order and the shards are merged.

        Items come from the index projection: enough for the worker, not the whole feed.
        """
        shards = [self._due_shard(shard, now, include_not_due) for shard in range(self.due_shards)]
        for _due, feed in heapq.merge(*shards, key=lambda pair: pair[0]):
            yield feed

    def _due_shard(self, shard: int, now: datetime, include_not_due: bool) -> Iterator[tuple[str, FeedState]]:
        cond = "due_pk = :p" if include_not_due else "due_pk = :p AND due_sk <= :now"
        values = {":p": keys.due_pk(shard)}
        if not include_not_due:
            values[":now"] = iso(now)  # type: ignore[assignment]
        for item in self._query_all(
            IndexName=keys.DUE_INDEX, KeyConditionExpression=cond,
            ExpressionAttributeValues=serialize(values),
        ):
            data = deserialize(item)
            data["feed_id"] = data["pk"].removeprefix(keys.FEED_PREFIX)
            data["next_check_at"] = data.get("due_sk")
            yield data["due_sk"], FeedState.model_validate(
                {k: v for k, v in data.items() if k in FeedState.model_fields})
