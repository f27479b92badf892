"""Episode items: one per episode in its feed's partition; deleted only with their feed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from earshot.models import Episode
from earshot.store.dynamodb import keys
from earshot.store.dynamodb.base import DynamoTable, deserialize, serialize
from earshot.store.port import EpisodePage, iso


class EpisodeItems(DynamoTable):
    # --------------------------------------------------------------- episodes
    def episode_hashes(self, feed_id: str) -> dict[str, str]:
        """episode id -> content hash for every stored episode of a feed (keys only read)."""
        out: dict[str, str] = {}
        for item in self._query_all(
            KeyConditionExpression="pk = :p AND begins_with(sk, :e)",
            ExpressionAttributeValues=serialize({":p": keys.feed_pk(feed_id), ":e": keys.EP_PREFIX}),
            ProjectionExpression="sk, content_hash",
        ):
            out[item["sk"]["S"].removeprefix(keys.EP_PREFIX)] = item.get("content_hash", {}).get("S", "")
        return out

    def _episode_item(self, feed_id: str, ep: Episode, now: datetime) -> dict[str, Any]:
        data = ep.model_dump(mode="json")
        data["published"] = iso(ep.published)
        data["feed_id"] = feed_id
        return {**keys.episode(feed_id, ep.id), **data,
                "first_seen_at": iso(now), "updated_at": iso(now)}

    def put_new_episodes(self, feed_id: str, episodes: list[Episode], now: datetime) -> None:
        """BatchWriteItem in chunks of 25, retrying unprocessed items."""
        requests = [{"PutRequest": {"Item": serialize(self._episode_item(feed_id, ep, now))}}
                    for ep in episodes]
        self._batch_write(requests)

    def update_changed_episodes(self, feed_id: str, episodes: list[Episode], now: datetime) -> None:
        """Overwrite episodes whose content changed, keeping ``first_seen_at``: their
        ``first_seen_at`` read 100 keys at a time (BatchGetItem), then written 25 items at
        a time (BatchWriteItem): a feed whose every episode changed costs ~n/20 requests,
        not n sequential UpdateItems."""
        if not episodes:
            return
        first_seen = self._first_seen(feed_id, [ep.id for ep in episodes])
        requests = []
        for ep in episodes:
            item = self._episode_item(feed_id, ep, now)
            item["first_seen_at"] = first_seen.get(ep.id) or item["first_seen_at"]
            requests.append({"PutRequest": {"Item": serialize(item)}})
        self._batch_write(requests)

    def _first_seen(self, feed_id: str, episode_ids: list[str]) -> dict[str, str]:
        """episode id -> stored ``first_seen_at``, for those of ``episode_ids`` stored."""
        out: dict[str, str] = {}
        keys_ = [serialize(keys.episode(feed_id, episode_id)) for episode_id in episode_ids]
        for start in range(0, len(keys_), 100):
            pending: dict[str, Any] = {self.table_name: {
                "Keys": keys_[start:start + 100], "ProjectionExpression": "sk, first_seen_at"}}
            for _attempt in range(8):
                resp = self.client.batch_get_item(RequestItems=pending)
                for item in resp.get("Responses", {}).get(self.table_name, []):
                    if "first_seen_at" in item:
                        out[item["sk"]["S"].removeprefix(keys.EP_PREFIX)] = item["first_seen_at"]["S"]
                pending = resp.get("UnprocessedKeys") or {}
                if not pending:
                    break
            else:
                raise RuntimeError(f"DynamoDB left {len(pending[self.table_name]['Keys'])} keys unprocessed")
        return out

    def _delete_episode_items(self, feed_id: str) -> None:
        """Every episode item of a feed (keys read, then deleted 25 at a time)."""
        found = [item["sk"]["S"] for item in self._query_all(
            KeyConditionExpression="pk = :p AND begins_with(sk, :e)",
            ExpressionAttributeValues=serialize({":p": keys.feed_pk(feed_id), ":e": keys.EP_PREFIX}),
            ProjectionExpression="sk",
        )]
        self._batch_write([{"DeleteRequest": {"Key": serialize({"pk": keys.feed_pk(feed_id), "sk": sk})}}
                           for sk in found])

    def list_episodes(self, feed_id: str) -> list[Episode]:
        return [self._episode_from_item(i) for i in self._query_all(
            KeyConditionExpression="pk = :p AND begins_with(sk, :e)",
            ExpressionAttributeValues=serialize({":p": keys.feed_pk(feed_id), ":e": keys.EP_PREFIX}),
        )]

    def iter_all_episodes(self) -> Iterator[Episode]:
        """Every stored episode (a Scan; used by topic backfill, not on the hot path)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "FilterExpression": "begins_with(sk, :e)",
            "ExpressionAttributeValues": serialize({":e": keys.EP_PREFIX}),
        }
        while True:
            resp = self.client.scan(**kwargs)
            for item in resp.get("Items", []):
                yield self._episode_from_item(item)
            if "LastEvaluatedKey" not in resp:
                return
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def episode_segment(self, segment: int, total_segments: int, *, cursor: str | None = None,
                        limit: int = 500) -> EpisodePage:
        """One Scan page of a parallel Scan segment. ``Limit`` counts the items read
        (feed items too), so a page holds at most ``limit`` episodes and may hold none."""
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "Segment": segment,
            "TotalSegments": total_segments,
            "Limit": limit,
            "FilterExpression": "begins_with(sk, :e)",
            "ExpressionAttributeValues": serialize({":e": keys.EP_PREFIX}),
        }
        if cursor is not None:
            kwargs["ExclusiveStartKey"] = json.loads(cursor)
        resp = self.client.scan(**kwargs)
        last = resp.get("LastEvaluatedKey")
        return EpisodePage([self._episode_from_item(item) for item in resp.get("Items", [])],
                           json.dumps(last, sort_keys=True) if last else None)

    @staticmethod
    def _episode_from_item(item: dict[str, Any]) -> Episode:
        data = deserialize(item)
        return Episode.model_validate({k: v for k, v in data.items() if k in Episode.model_fields})
