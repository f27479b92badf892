"""The DynamoDB adapter of the storage port (:mod:`earshot.store.port`): the only module
that talks to DynamoDB.

Single-table design (table ``earshot``; keys are strings):

    item             pk                      sk                                     GSIs
    ---------------  ----------------------  -------------------------------------  -----------------------------
    feed             FEED#<feed_id>          FEED                                   due: DUE#<shard> / next_check_at
                                                                                    type: FEED / <url>
    episode          FEED#<feed_id>          EP#<episode_id>                        -
    topic            TOPIC#<slug>            TOPIC                                  type: TOPIC / <slug>
    topic match      TOPIC#<slug>            MATCH#<published>#<feed_id>#<ep_id>    -
    subscriber       ADDR#<address_hash>     SUB#<topic>                            type: SUBSCRIBERS#<topic>
                                                                                          (confirmed only)
    confirm window   ADDR#<address_hash>     CONFIRMS                               - (TTL)
    send claim       ADDR#<address_hash>     SENT#<topic>#<iso week>                - (TTL)
    token            TOKEN#<sha256>          TOKEN                                  - (TTL)
    rendered digest  DIGEST#<topic>          WEEK#<iso week>                        - (TTL)

(the subscriptions section below explains its items; ``expires_at`` is the table's TTL)

- ``due`` is sparse and sharded: only feeds that should be checked carry ``due_pk``
  (``DUE#0`` .. ``DUE#<n-1>``, shard = hash of the feed id) so the hourly dispatcher
  reads n small partitions instead of one hot one. A gone feed (410) drops out of it.
  The index projects what the worker needs (url, validators, hash, counters), so the
  dispatcher's Query already carries everything and the worker needs no GetItem.
- ``type`` lists items of one kind (feeds by URL, topics by slug, a topic's confirmed
  subscribers) without a Scan. It projects only attributes that rarely change, so a
  routine feed check (new validators, next check) writes nothing to it.
- Episodes are never deleted: a feed that truncates its list leaves stored episodes as
  they are. New episodes are batch-written; changed ones are updated in place with
  ``first_seen_at`` kept (``if_not_exists``).

The Dynamo item <-> model mapping is here and nowhere else.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from earshot.models import Episode, FeedState, MatchedEpisode, Subscriber, TokenRecord, Topic
from earshot.store.port import CLEARED_WHEN_EMPTY, Store, iso

TOPIC_SK = "TOPIC"
MATCH_PREFIX = "MATCH#"
UNDATED = "0000-00-00T00:00:00Z"

_ser = TypeSerializer()
_de = TypeDeserializer()

FEED_SK = "FEED"
EP_PREFIX = "EP#"
DUE_INDEX = "due"
TYPE_INDEX = "type"

# A feed's attributes that the ``type`` index keys or projects and that a check only
# rewrites when they changed (keep in step with template.yaml). ``status`` is projected
# too but always written: a queued check's snapshot of it may be stale after a retry.
TYPE_INDEXED_FEED_ATTRIBUTES = ("type_pk", "type_sk", "url", "title")
# Attributes the due index projects: what a fetch check (FeedCheck) carries besides its
# key. tests/test_consistency.py holds this, template.yaml and FeedCheck in step.
DUE_PROJECTION = (
    "url", "status", "etag", "last_modified", "body_sha256", "error_count", "interval_s",
    "title", "episode_count",
)


def shard_for(feed_id: str, shards: int) -> int:
    return int(hashlib.sha256(feed_id.encode()).hexdigest()[:8], 16) % shards


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
    data: dict[str, Any] = _from_dynamo({k: _de.deserialize(v) for k, v in item.items()})
    return data


class DynamoStore(Store):
    """DynamoDB access for every Earshot item. Thread-safe (uses a boto3 client)."""

    def __init__(self, table_name: str, *, client: Any | None = None, due_shards: int = 4) -> None:
        self.table_name = self.name = table_name
        self.client: Any = client or boto3.client("dynamodb")
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
        return self._if(
            "put_item", Item=serialize(self._feed_item(feed)),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def get_feed(self, feed_id: str) -> FeedState | None:
        resp = self.client.get_item(
            TableName=self.table_name, Key=serialize({"pk": f"FEED#{feed_id}", "sk": FEED_SK})
        )
        return self._feed_from_item(resp["Item"]) if "Item" in resp else None

    def save_feed_state(self, feed: FeedState, *, previous: FeedState | None = None) -> None:
        """Write the feed's state after a check: one UpdateItem, the only write of a warm check.

        With ``previous`` (the state the check started from), the url and title (which the
        ``type`` index keys and projects) are left out when unchanged, so a routine check does
        not rewrite them in that index.
        Conditional on the feed still existing, so a feed removed meanwhile is not revived.
        """
        item = self._feed_item(feed)
        if previous is not None:
            before = self._feed_item(previous)
            for key in TYPE_INDEXED_FEED_ATTRIBUTES:
                if item.get(key) == before.get(key):
                    item.pop(key, None)
        cleared = [k for k in (*CLEARED_WHEN_EMPTY, "due_pk", "due_sk") if item.get(k) in (None, "")]
        try:
            self._update(item, remove=cleared, condition="attribute_exists(pk)")
        except self.client.exceptions.ConditionalCheckFailedException:
            return  # removed meanwhile: never revived

    def list_feeds(self) -> Iterator[FeedState]:
        """Every feed, whole: keys from the ``type`` index (which projects only slowly
        changing attributes, so checks do not write to it), items by BatchGetItem."""
        keys = [{"pk": item["pk"], "sk": item["sk"]} for item in self._query_all(
            IndexName=TYPE_INDEX,
            KeyConditionExpression="type_pk = :t",
            ExpressionAttributeValues=serialize({":t": "FEED"}),
            ProjectionExpression="pk, sk",
        )]
        for item in self._batch_get(keys):
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
        values = {":p": f"DUE#{shard}"}
        if not include_not_due:
            values[":now"] = iso(now)  # type: ignore[assignment]
        for item in self._query_all(
            IndexName=DUE_INDEX, KeyConditionExpression=cond,
            ExpressionAttributeValues=serialize(values),
        ):
            data = deserialize(item)
            data["feed_id"] = data["pk"].removeprefix("FEED#")
            data["next_check_at"] = data.get("due_sk")
            yield data["due_sk"], FeedState.model_validate(
                {k: v for k, v in data.items() if k in FeedState.model_fields})

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
            self._update(
                item,
                remove=[k for k, v in item.items() if v in (None, "")],
                extra_set="#first_seen_at = if_not_exists(#first_seen_at, :first_seen_at)",
                extra_values={":first_seen_at": first_seen},
                extra_names={"#first_seen_at": "first_seen_at"},
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
    def _if(self, operation: str, **kwargs: Any) -> bool:
        """Run a conditional write; False (nothing changed) when its condition failed."""
        try:
            getattr(self.client, operation)(TableName=self.table_name, **kwargs)
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _update(
        self,
        item: dict[str, Any],
        *,
        remove: list[str] = (),  # type: ignore[assignment]
        condition: str | None = None,
        extra_set: str | None = None,
        extra_values: dict[str, Any] | None = None,
        extra_names: dict[str, str] | None = None,
    ) -> None:
        """UpdateItem that SETs every present attribute of ``item`` and REMOVEs ``remove``."""
        present = {k: v for k, v in item.items() if k not in ("pk", "sk") and v not in (None, "")}
        names = {f"#{k}": k for k in [*present, *remove]} | (extra_names or {})
        values = {f":{k}": v for k, v in present.items()} | (extra_values or {})
        sets = [f"#{k} = :{k}" for k in present] + ([extra_set] if extra_set else [])
        expr = "SET " + ", ".join(sets)
        if remove:
            expr += " REMOVE " + ", ".join(f"#{k}" for k in remove)
        kwargs: dict[str, Any] = {}
        if condition:
            kwargs["ConditionExpression"] = condition
        self.client.update_item(
            TableName=self.table_name,
            Key=serialize({"pk": item["pk"], "sk": item["sk"]}),
            UpdateExpression=expr,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=serialize(values),
            **kwargs,
        )

    def _query_all(self, **kwargs: Any) -> Iterable[dict[str, Any]]:
        kwargs["TableName"] = self.table_name
        while True:
            resp = self.client.query(**kwargs)
            yield from resp.get("Items", [])
            if "LastEvaluatedKey" not in resp:
                return
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def _batch_get(self, keys: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """BatchGetItem in chunks of 100, retrying unprocessed keys; items in key order."""
        for start in range(0, len(keys), 100):
            chunk = keys[start:start + 100]
            found: dict[tuple[str, str], dict[str, Any]] = {}
            pending: dict[str, Any] = {self.table_name: {"Keys": chunk}}
            for _attempt in range(8):
                resp = self.client.batch_get_item(RequestItems=pending)
                for item in resp.get("Responses", {}).get(self.table_name, []):
                    found[(item["pk"]["S"], item["sk"]["S"])] = item
                pending = resp.get("UnprocessedKeys") or {}
                if not pending:
                    break
            else:
                raise RuntimeError(f"DynamoDB left {len(pending[self.table_name]['Keys'])} keys unprocessed")
            yield from (found[key] for k in chunk if (key := (k["pk"]["S"], k["sk"]["S"])) in found)

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
    # A match item is a snapshot of the episode (MatchedEpisode) so the topic page, feed
    # and digest read one partition. Its sort key orders by publication date; undated
    # episodes sort first ascending (last when read newest-first).

    @staticmethod
    def match_sk(match: MatchedEpisode) -> str:
        published = iso(match.published) or UNDATED
        return f"{MATCH_PREFIX}{published}#{match.feed_id}#{match.episode_id}"

    @staticmethod
    def _topic_from_item(item: dict[str, Any]) -> Topic:
        data = deserialize(item)
        return Topic.model_validate({k: v for k, v in data.items() if k in Topic.model_fields})

    def _topic_item(self, topic: Topic) -> dict[str, Any]:
        data = topic.model_dump(mode="json")
        data["created_at"], data["updated_at"] = iso(topic.created_at), iso(topic.updated_at)
        return {"pk": f"TOPIC#{topic.slug}", "sk": TOPIC_SK, "type_pk": "TOPIC", "type_sk": topic.slug, **data}

    def create_topic(self, topic: Topic) -> bool:
        """Insert a topic; False if the slug is taken (nothing changes then)."""
        return self._if(
            "put_item", Item=serialize(self._topic_item(topic)),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def save_topic(self, topic: Topic) -> bool:
        """Overwrite an existing topic; False if it was removed meanwhile."""
        return self._if(
            "put_item", Item=serialize(self._topic_item(topic)),
            ConditionExpression="attribute_exists(pk)",
        )

    def get_topic(self, slug: str) -> Topic | None:
        resp = self.client.get_item(
            TableName=self.table_name, Key=serialize({"pk": f"TOPIC#{slug}", "sk": TOPIC_SK})
        )
        return self._topic_from_item(resp["Item"]) if "Item" in resp else None

    def list_topics(self) -> list[Topic]:
        return [self._topic_from_item(item) for item in self._query_all(
            IndexName=TYPE_INDEX,
            KeyConditionExpression="type_pk = :t",
            ExpressionAttributeValues=serialize({":t": "TOPIC"}),
        )]

    def delete_topic(self, slug: str) -> bool:
        """Delete a topic and all its matches; False if there was no such topic."""
        resp = self.client.delete_item(
            TableName=self.table_name, Key=serialize({"pk": f"TOPIC#{slug}", "sk": TOPIC_SK}),
            ReturnValues="ALL_OLD",
        )
        self._delete_matches(slug, self._match_keys(slug))
        return "Attributes" in resp

    def _match_keys(self, slug: str, *, feed_id: str | None = None) -> list[str]:
        """Sort keys of a topic's match items (optionally one feed's), keys only read."""
        values = {":p": f"TOPIC#{slug}", ":m": MATCH_PREFIX}
        kwargs: dict[str, Any] = {}
        if feed_id is not None:
            values[":f"] = feed_id
            kwargs["FilterExpression"] = "feed_id = :f"
        return [item["sk"]["S"] for item in self._query_all(
            KeyConditionExpression="pk = :p AND begins_with(sk, :m)",
            ExpressionAttributeValues=serialize(values),
            ProjectionExpression="sk",
            **kwargs,
        )]

    def list_matches(self, slug: str, *, limit: int | None = None) -> list[MatchedEpisode]:
        """A topic's matches, newest first."""
        kwargs: dict[str, Any] = {"ScanIndexForward": False}
        out: list[MatchedEpisode] = []
        for item in self._query_all(
            KeyConditionExpression="pk = :p AND begins_with(sk, :m)",
            ExpressionAttributeValues=serialize({":p": f"TOPIC#{slug}", ":m": MATCH_PREFIX}),
            **kwargs,
        ):
            data = deserialize(item)
            out.append(MatchedEpisode.model_validate(
                {k: v for k, v in data.items() if k in MatchedEpisode.model_fields}))
            if limit is not None and len(out) >= limit:
                break
        return out

    def count_matches(self, slug: str) -> int:
        return len(self._match_keys(slug))

    def replace_feed_matches(self, slug: str, feed_id: str, episode_ids: Iterable[str],
                             matches: list[MatchedEpisode]) -> int:
        # The episode id is the last part of the sort key; a changed date moves the key,
        # so earlier keys of these episodes that are not written again are stale.
        ids = set(episode_ids)
        new_keys = {self.match_sk(m) for m in matches}
        stale = [sk for sk in self._match_keys(slug, feed_id=feed_id)
                 if sk.split("#", 3)[3] in ids and sk not in new_keys]
        self._put_matches(slug, matches)
        self._delete_matches(slug, stale)
        return len(stale)

    def replace_topic_matches(self, slug: str, matches: list[MatchedEpisode]) -> int:
        new_keys = {self.match_sk(m) for m in matches}
        stale = [sk for sk in self._match_keys(slug) if sk not in new_keys]
        self._put_matches(slug, matches)
        self._delete_matches(slug, stale)
        return len(stale)

    def _put_matches(self, slug: str, matches: list[MatchedEpisode]) -> None:
        requests = []
        for match in matches:
            data = match.model_dump(mode="json")
            data["published"] = iso(match.published)
            item = {"pk": f"TOPIC#{slug}", "sk": self.match_sk(match), **data}
            requests.append({"PutRequest": {"Item": serialize(item)}})
        self._batch_write(requests)

    def _delete_matches(self, slug: str, sort_keys: Iterable[str]) -> None:
        self._batch_write([
            {"DeleteRequest": {"Key": serialize({"pk": f"TOPIC#{slug}", "sk": sk})}} for sk in sort_keys
        ])

    def atomic(self) -> AbstractContextManager[None]:
        # Each DynamoDB write is durable on its own; see the port's note on write order.
        return nullcontext()

    # ========================================================== subscriptions
    # (subscriber, token and digest-claim items)
    #
    #   item               pk                     sk                        notes
    #   -----------------  ---------------------  ------------------------  ---------------------------
    #   subscriber         ADDR#<address_hash>    SUB#<topic>               type: SUBSCRIBERS#<topic> /
    #                                                                       <address_hash>, only while
    #                                                                       confirmed (sparse)
    #   confirm window     ADDR#<address_hash>    CONFIRMS                  TTL expires_at; at most
    #                                                                       ``limit`` entries
    #   send claim         ADDR#<address_hash>    SENT#<topic>#<iso week>   TTL expires_at
    #   token              TOKEN#<sha256>         TOKEN                     TTL expires_at
    #   rendered digest    DIGEST#<topic>         WEEK#<iso week>           TTL expires_at
    #
    # - One partition per address: a bounce for an address finds all its subscriptions
    #   with one Query, and its confirmation-mail window sits beside them.
    # - The digest lists recipients from the sparse ``type`` index, which holds confirmed
    #   subscribers only, so it never reads unsubscribed or bounced ones.
    # - A claim and the digest's unsubscribe token are one TransactWriteItems: both or
    #   neither, so a failed write leaves nothing claimed. The claim keeps the token's hash,
    #   which tells the claimant's own retried write (SDK retry after a lost answer) from
    #   somebody else's claim.
    # - Idempotency uses a conditional-put claim per (topic, ISO week, address) rather than
    #   Powertools Idempotency: the key is the business key itself (not a payload hash),
    #   the claim sits in the subscriber's partition as the record of what was sent, and
    #   one batch message covers many recipients, each needing its own at-most-once
    #   guard, which Powertools' one-record-per-invocation model does not give.
    # - ``expires_at`` (epoch seconds) is the table's TTL attribute. TTL deletion lags by
    #   up to days, so code also checks expiry itself (tokens.verify).

    def _subscriber_item(self, sub: Subscriber) -> dict[str, Any]:
        data = sub.model_dump(mode="json")
        item = {"pk": f"ADDR#{sub.address_hash}", "sk": f"SUB#{sub.topic}", **data}
        if sub.status == "confirmed":
            item["type_pk"] = f"SUBSCRIBERS#{sub.topic}"
            item["type_sk"] = sub.address_hash
        return item

    @staticmethod
    def _subscriber_from_item(item: dict[str, Any]) -> Subscriber:
        data = deserialize(item)
        return Subscriber.model_validate({k: v for k, v in data.items() if k in Subscriber.model_fields})

    def get_subscriber(self, address_hash: str, topic: str) -> Subscriber | None:
        """The :class:`~earshot.models.Subscriber` or None (strongly consistent read)."""
        resp = self.client.get_item(
            TableName=self.table_name, ConsistentRead=True,
            Key=serialize({"pk": f"ADDR#{address_hash}", "sk": f"SUB#{topic}"}),
        )
        return self._subscriber_from_item(resp["Item"]) if "Item" in resp else None

    def save_subscriber(self, sub: Subscriber) -> bool:
        """Write a subscriber if nobody else wrote it since it was read (optimistic lock on
        ``version``); the stored version becomes ``sub.version + 1``. False on a conflict."""
        item = self._subscriber_item(sub) | {"version": sub.version + 1}
        cond = "attribute_not_exists(pk)" if sub.version == 0 else "version = :v"
        kwargs: dict[str, Any] = {}
        if sub.version:
            kwargs["ExpressionAttributeValues"] = serialize({":v": sub.version})
        return self._if(
            "put_item", Item=serialize(item),
            ConditionExpression=cond, **kwargs,
        )

    def subscriptions_of_address(self, address_hash: str) -> list[Subscriber]:
        """Every subscription (any status) of one address."""
        return [self._subscriber_from_item(i) for i in self._query_all(
            KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
            ExpressionAttributeValues=serialize({":p": f"ADDR#{address_hash}", ":s": "SUB#"}),
        )]

    def confirmed_subscribers(self, topic: str) -> Iterator[Subscriber]:
        """Confirmed subscribers of a topic, from the sparse ``type`` index (eventually
        consistent: a confirmation made a second ago may miss this week's digest)."""
        for item in self._query_all(
            IndexName=TYPE_INDEX, KeyConditionExpression="type_pk = :t",
            ExpressionAttributeValues=serialize({":t": f"SUBSCRIBERS#{topic}"}),
        ):
            yield self._subscriber_from_item(item)

    def count_confirmation_mail(self, address_hash: str, request_id: str, *, now: datetime, window: timedelta,
                                limit: int) -> bool:
        """Count a confirmation mail in the address's rolling window: one item holding
        request id -> epoch second of the mails still inside the window (at most ``limit``
        of them), rewritten under an optimistic lock on ``version``."""
        key = {"pk": f"ADDR#{address_hash}", "sk": "CONFIRMS"}
        since, at = int((now - window).timestamp()), int(now.timestamp())
        for _ in range(8):
            resp = self.client.get_item(TableName=self.table_name, ConsistentRead=True, Key=serialize(key))
            item = deserialize(resp["Item"]) if "Item" in resp else None
            recent = {k: int(v) for k, v in (item or {}).get("mails", {}).items() if int(v) > since}
            if request_id in recent:
                return True
            if len(recent) >= limit:
                return False
            recent[request_id] = at
            version = int((item or {}).get("version", 0))
            new = {**key, "mails": recent, "version": version + 1,
                   "expires_at": max(recent.values()) + int(window.total_seconds())}
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"} if item is None else {
                "ConditionExpression": "version = :v", "ExpressionAttributeValues": serialize({":v": version})}
            if self._if("put_item", Item=serialize(new), **condition):
                return True
        raise RuntimeError("the confirmation window kept changing")

    # -- tokens (stored only as hashes; see tokens.py)
    @staticmethod
    def _token_item(record: TokenRecord) -> dict[str, Any]:
        return {"pk": f"TOKEN#{record.token_hash}", "sk": "TOKEN", **record.model_dump(mode="json"),
                "expires_at": int(record.expires_at.timestamp())}

    def put_token(self, record: TokenRecord) -> None:
        self.client.put_item(TableName=self.table_name, Item=serialize(self._token_item(record)))

    def get_token(self, token_hash: str) -> TokenRecord | None:
        resp = self.client.get_item(TableName=self.table_name, ConsistentRead=True,
                                    Key=serialize({"pk": f"TOKEN#{token_hash}", "sk": "TOKEN"}))
        if "Item" not in resp:
            return None
        data = deserialize(resp["Item"])
        return TokenRecord.model_validate({k: v for k, v in data.items() if k in TokenRecord.model_fields})

    def delete_token(self, token_hash: str) -> bool:
        """Delete a token; False if it was already gone (a single-use token used twice)."""
        return self._if(
            "delete_item", ConditionExpression="attribute_exists(pk)",
            Key=serialize({"pk": f"TOKEN#{token_hash}", "sk": "TOKEN"}),
        )

    # -- digest send claims: at most one mail per (topic, ISO week, address)
    def claim_send(self, address_hash: str, topic: str, week: str, *, now: datetime, expires_at: int,
                   token: TokenRecord) -> bool:
        """Claim the right to mail this address this week's digest, and store its
        unsubscribe token, in one transaction; False if claimed before (already sent, or a
        previous attempt died mid-send: never risk a second mail).

        The SDK repeats a transaction whose answer was lost (with the same client request
        token, which DynamoDB answers as a success for ten minutes); a repeat that still
        finds the claim, with this token's hash in it, is this caller's own claim."""
        key = {"pk": f"ADDR#{address_hash}", "sk": f"SENT#{topic}#{week}"}
        claim = {**key, "state": "claimed", "claimed_at": iso(now), "expires_at": expires_at,
                 "token_hash": token.token_hash}
        try:
            self.client.transact_write_items(TransactItems=[
                {"Put": {"TableName": self.table_name, "Item": serialize(claim),
                         "ConditionExpression": "attribute_not_exists(pk)"}},
                {"Put": {"TableName": self.table_name, "Item": serialize(self._token_item(token))}},
            ])
        except self.client.exceptions.TransactionCanceledException as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if "ConditionalCheckFailed" not in reasons:
                raise  # a conflict or a throttle: nothing was written; the caller retries later
            resp = self.client.get_item(TableName=self.table_name, ConsistentRead=True, Key=serialize(key))
            held: str | None = resp.get("Item", {}).get("token_hash", {}).get("S")
            return held == token.token_hash
        return True

    def finish_claim(self, address_hash: str, topic: str, week: str, *, state: str, now: datetime,
                     message_id: str | None = None, detail: str | None = None) -> None:
        """Record how a claimed send ended: ``sent`` (with SES's message id), ``rejected``
        or ``unknown`` (no answer from SES)."""
        values = {":s": state, ":t": iso(now), ":m": message_id or "-", ":d": detail or "-"}
        self.client.update_item(
            TableName=self.table_name,
            Key=serialize({"pk": f"ADDR#{address_hash}", "sk": f"SENT#{topic}#{week}"}),
            UpdateExpression="SET #s = :s, finished_at = :t, message_id = :m, detail = :d",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues=serialize(values),
        )

    def release_claim(self, address_hash: str, topic: str, week: str) -> None:
        """Drop a claim still in state ``claimed`` (SES certainly sent nothing); a claim
        that already ended (sent, rejected) stays."""
        self._if("delete_item", ConditionExpression="#s = :claimed",
                 ExpressionAttributeNames={"#s": "state"},
                 ExpressionAttributeValues=serialize({":claimed": "claimed"}),
                 Key=serialize({"pk": f"ADDR#{address_hash}", "sk": f"SENT#{topic}#{week}"}))

    def get_claim_state(self, address_hash: str, topic: str, week: str) -> str | None:
        resp = self.client.get_item(TableName=self.table_name, ConsistentRead=True,
                                    Key=serialize({"pk": f"ADDR#{address_hash}", "sk": f"SENT#{topic}#{week}"}))
        return resp["Item"]["state"]["S"] if "Item" in resp else None

    # -- rendered digests: rendered once per (topic, week), read by every send batch
    def put_rendered_digest(self, topic: str, week: str, payload: bytes, *, expires_at: int) -> bool:
        """Store a week's rendered digest unless one exists (a re-run keeps the first, so
        every batch of that week mails the same content). False if one existed."""
        return self._if(
            "put_item", ConditionExpression="attribute_not_exists(pk)",
            Item={"pk": {"S": f"DIGEST#{topic}"}, "sk": {"S": f"WEEK#{week}"},
                "payload": {"B": payload}, "expires_at": {"N": str(expires_at)}},
        )

    def get_rendered_digest(self, topic: str, week: str) -> bytes | None:
        resp = self.client.get_item(TableName=self.table_name, ConsistentRead=True,
                                    Key=serialize({"pk": f"DIGEST#{topic}", "sk": f"WEEK#{week}"}))
        return bytes(resp["Item"]["payload"]["B"]) if "Item" in resp else None
