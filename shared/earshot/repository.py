"""The only module that talks to DynamoDB.

Single-table design (table ``earshot``; keys are strings):

    item             pk                      sk                                     GSIs
    ---------------  ----------------------  -------------------------------------  -----------------------------
    feed             FEED#<feed_id>          FEED                                   due: DUE#<shard> / next_check_at
                                                                                    type: FEED / <url>
    episode          FEED#<feed_id>          EP#<episode_id>                        -
    topic            TOPIC#<slug>            TOPIC                                  type: TOPIC / <slug>
    topic match      TOPIC#<slug>            MATCH#<published>#<feed_id>#<ep_id>    -
    subscriber       (see the subscriptions section below)

- ``due`` is sparse and sharded: only feeds that should be checked carry ``due_pk``
  (``DUE#0`` .. ``DUE#<n-1>``, shard = hash of the feed id) so the hourly dispatcher
  reads n small partitions instead of one hot one. A gone feed (410) drops out of it.
  The index projects what the worker needs (url, validators, hash, counters), so the
  dispatcher's Query already carries everything and the worker needs no GetItem.
- ``type`` lists items of one kind (feeds by URL, topics by slug) without a Scan.
- Episodes are never deleted: a feed that truncates its list leaves stored episodes as
  they are. New episodes are batch-written; changed ones are updated in place with
  ``first_seen_at`` kept (``if_not_exists``).

The Dynamo item <-> model mapping is here and nowhere else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from earshot.models import Episode, FeedState

_ser = TypeSerializer()
_de = TypeDeserializer()

FEED_SK = "FEED"
EP_PREFIX = "EP#"
DUE_INDEX = "due"
TYPE_INDEX = "type"

# Attributes the due index projects (keep in step with template.yaml).
DUE_PROJECTION = (
    "url", "status", "etag", "last_modified", "body_sha256", "error_count", "interval_s",
    "title", "episode_count",
)


def feed_id_for(url: str) -> str:
    """Stable feed id for a URL (the id survives later 301s; the URL attribute moves).

    >>> feed_id_for("https://example.com/feed.xml")
    'f-3ab9b3fa5e3d1a54'
    """
    return "f-" + hashlib.sha256(url.strip().encode()).hexdigest()[:16]


def shard_for(feed_id: str, shards: int) -> int:
    return int(hashlib.sha256(feed_id.encode()).hexdigest()[:8], 16) % shards


def iso(dt: datetime | None) -> str | None:
    """UTC ISO 8601 with a Z, sortable as a string."""
    if dt is None:
        return None
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items() if v is not None and v != ""}
    if isinstance(value, (list, tuple)):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, (list, set)):
        return [_from_dynamo(v) for v in value]
    return value


def serialize(item: dict[str, Any]) -> dict[str, Any]:
    """Plain dict -> DynamoDB attribute map (None and empty strings dropped)."""
    return {k: _ser.serialize(v) for k, v in _to_dynamo(item).items()}


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    return _from_dynamo({k: _de.deserialize(v) for k, v in item.items()})


class Repository:
    """DynamoDB access for every Earshot item. Thread-safe (uses a boto3 client)."""

    def __init__(self, table_name: str, *, client: Any | None = None, due_shards: int = 4) -> None:
        self.table_name = table_name
        self.client = client or boto3.client("dynamodb")
        self.due_shards = due_shards

    # ------------------------------------------------------------------ feeds
    def _feed_item(self, feed: FeedState) -> dict[str, Any]:
        data = feed.model_dump(mode="json")
        for key in ("last_checked_at", "next_check_at", "created_at", "last_new_episode_at"):
            data[key] = iso(getattr(feed, key))
        item = {"pk": f"FEED#{feed.feed_id}", "sk": FEED_SK, "type_pk": "FEED", "type_sk": feed.url, **data}
        if feed.status != "gone" and feed.next_check_at is not None:
            item["due_pk"] = f"DUE#{shard_for(feed.feed_id, self.due_shards)}"
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
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=serialize(self._feed_item(feed)),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def get_feed(self, feed_id: str) -> FeedState | None:
        resp = self.client.get_item(
            TableName=self.table_name, Key=serialize({"pk": f"FEED#{feed_id}", "sk": FEED_SK})
        )
        return self._feed_from_item(resp["Item"]) if "Item" in resp else None

    def save_feed_state(self, feed: FeedState) -> None:
        """Write the feed's state after a check: one PutItem, the only write of a warm check.

        Conditional on the feed still existing, so a feed removed meanwhile is not revived.
        """
        item = self._feed_item(feed)
        names = {f"#{k}": k for k in item if k not in ("pk", "sk")}
        values = {f":{k}": v for k, v in item.items() if k not in ("pk", "sk")}
        sets = ", ".join(f"#{k} = :{k}" for k in item if k not in ("pk", "sk"))
        removable = [
            k for k in ("etag", "last_modified", "body_sha256", "last_error_kind",
                        "last_error_message", "due_pk", "due_sk", "last_status")
            if k not in item
        ]
        expr = f"SET {sets}"
        if removable:
            expr += " REMOVE " + ", ".join(f"#{k}" for k in removable)
            names.update({f"#{k}": k for k in removable})
        self.client.update_item(
            TableName=self.table_name,
            Key=serialize({"pk": item["pk"], "sk": FEED_SK}),
            UpdateExpression=expr,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=serialize(values),
            ConditionExpression="attribute_exists(pk)",
        )

    def list_feeds(self) -> Iterator[FeedState]:
        for item in self._query_all(
            IndexName=TYPE_INDEX,
            KeyConditionExpression="type_pk = :t",
            ExpressionAttributeValues=serialize({":t": "FEED"}),
        ):
            yield self._feed_from_item(item)

    def due_feeds(self, now: datetime, *, include_not_due: bool = False) -> Iterator[FeedState]:
        """Feeds whose ``next_check_at`` has passed, read shard by shard from the due index.

        Items come from the index projection: enough for the worker, not the whole feed.
        """
        for shard in range(self.due_shards):
            cond = "due_pk = :p" if include_not_due else "due_pk = :p AND due_sk <= :now"
            values = {":p": f"DUE#{shard}"}
            if not include_not_due:
                values[":now"] = iso(now)
            for item in self._query_all(
                IndexName=DUE_INDEX, KeyConditionExpression=cond,
                ExpressionAttributeValues=serialize(values),
            ):
                data = deserialize(item)
                data["feed_id"] = data["pk"].removeprefix("FEED#")
                data["next_check_at"] = data.get("due_sk")
                yield FeedState.model_validate({k: v for k, v in data.items() if k in FeedState.model_fields})

    # --------------------------------------------------------------- episodes
    def episode_hashes(self, feed_id: str) -> dict[str, str]:
        """episode id -> content hash for every stored episode of a feed (keys only read)."""
        out: dict[str, str] = {}
        for item in self._query_all(
            KeyConditionExpression="pk = :p AND begins_with(sk, :e)",
            ExpressionAttributeValues=serialize({":p": f"FEED#{feed_id}", ":e": EP_PREFIX}),
            ProjectionExpression="sk, content_hash",
        ):
            out[item["sk"]["S"].removeprefix(EP_PREFIX)] = item.get("content_hash", {}).get("S", "")
        return out

    def _episode_item(self, feed_id: str, ep: Episode, now: datetime) -> dict[str, Any]:
        data = ep.model_dump(mode="json")
        data["published"] = iso(ep.published)
        data["feed_id"] = feed_id
        return {"pk": f"FEED#{feed_id}", "sk": EP_PREFIX + ep.id, **data,
                "first_seen_at": iso(now), "updated_at": iso(now)}

    def put_new_episodes(self, feed_id: str, episodes: list[Episode], now: datetime) -> None:
        """BatchWriteItem in chunks of 25, retrying unprocessed items."""
        requests = [{"PutRequest": {"Item": serialize(self._episode_item(feed_id, ep, now))}}
                    for ep in episodes]
        self._batch_write(requests)

    def update_changed_episodes(self, feed_id: str, episodes: list[Episode], now: datetime) -> None:
        """Update episodes whose content changed, keeping ``first_seen_at``."""
        for ep in episodes:
            item = self._episode_item(feed_id, ep, now)
            first_seen = item.pop("first_seen_at")
            attrs = {k: v for k, v in item.items() if k not in ("pk", "sk")}
            names = {f"#{k}": k for k in attrs} | {"#first_seen_at": "first_seen_at"}
            values = {f":{k}": v for k, v in attrs.items()} | {":first_seen_at": first_seen}
            sets = ", ".join(f"#{k} = :{k}" for k in attrs)
            sets += ", #first_seen_at = if_not_exists(#first_seen_at, :first_seen_at)"
            self.client.update_item(
                TableName=self.table_name,
                Key=serialize({"pk": item["pk"], "sk": item["sk"]}),
                UpdateExpression=f"SET {sets}",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=serialize(values),
            )

    def list_episodes(self, feed_id: str) -> list[Episode]:
        return [self._episode_from_item(i) for i in self._query_all(
            KeyConditionExpression="pk = :p AND begins_with(sk, :e)",
            ExpressionAttributeValues=serialize({":p": f"FEED#{feed_id}", ":e": EP_PREFIX}),
        )]

    def iter_all_episodes(self) -> Iterator[Episode]:
        """Every stored episode (a Scan; used by topic backfill, not on the hot path)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "FilterExpression": "begins_with(sk, :e)",
            "ExpressionAttributeValues": serialize({":e": EP_PREFIX}),
        }
        while True:
            resp = self.client.scan(**kwargs)
            for item in resp.get("Items", []):
                yield self._episode_from_item(item)
            if "LastEvaluatedKey" not in resp:
                return
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    @staticmethod
    def _episode_from_item(item: dict[str, Any]) -> Episode:
        data = deserialize(item)
        return Episode.model_validate({k: v for k, v in data.items() if k in Episode.model_fields})

    # ---------------------------------------------------------------- helpers
    def _query_all(self, **kwargs: Any) -> Iterable[dict[str, Any]]:
        kwargs["TableName"] = self.table_name
        while True:
            resp = self.client.query(**kwargs)
            yield from resp.get("Items", [])
            if "LastEvaluatedKey" not in resp:
                return
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def _batch_write(self, requests: list[dict[str, Any]]) -> None:
        for start in range(0, len(requests), 25):
            pending = {self.table_name: requests[start:start + 25]}
            for _attempt in range(8):
                resp = self.client.batch_write_item(RequestItems=pending)
                pending = resp.get("UnprocessedItems") or {}
                if not pending:
                    break
            else:
                raise RuntimeError(f"DynamoDB left {len(pending[self.table_name])} items unprocessed")

    # ================================================================= topics
    # (topic, match items: see the key table above)

    # ========================================================== subscriptions
    # (subscriber, token and digest-claim items)
