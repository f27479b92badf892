"""Transcript state items: one per episode with a transcript, beside the episode in its
feed's partition (``TX#<episode_id>``); the text is in the transcript archive (S3)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from earshot.models import Episode, TranscriptState
from earshot.store.dynamodb import keys
from earshot.store.dynamodb.base import DynamoTable, deserialize, serialize
from earshot.store.port import iso


class TranscriptItems(DynamoTable):
    def get_episode(self, feed_id: str, episode_id: str) -> Episode | None:
        resp = self.client.get_item(TableName=self.table_name, Key=serialize(keys.episode(feed_id, episode_id)))
        if "Item" not in resp:
            return None
        data = deserialize(resp["Item"])
        return Episode.model_validate({k: v for k, v in data.items() if k in Episode.model_fields})

    def save_transcript_state(self, state: TranscriptState) -> None:
        data = state.model_dump(mode="json")
        data["next_attempt_at"], data["fetched_at"] = iso(state.next_attempt_at), iso(state.fetched_at)
        self.client.put_item(TableName=self.table_name,
                             Item=serialize({**keys.transcript_state(state.feed_id, state.episode_id), **data}))

    def get_transcript_state(self, feed_id: str, episode_id: str) -> TranscriptState | None:
        resp = self.client.get_item(TableName=self.table_name,
                                    Key=serialize(keys.transcript_state(feed_id, episode_id)))
        return self._transcript_state_from_item(resp["Item"]) if "Item" in resp else None

    def iter_transcript_states(self) -> Iterator[TranscriptState]:
        """Every transcript state (a Scan; topic backfill only)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "FilterExpression": "begins_with(sk, :t)",
            "ExpressionAttributeValues": serialize({":t": keys.TX_PREFIX}),
        }
        while True:
            resp = self.client.scan(**kwargs)
            for item in resp.get("Items", []):
                yield self._transcript_state_from_item(item)
            if "LastEvaluatedKey" not in resp:
                return
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def _delete_transcript_items(self, feed_id: str) -> None:
        found = [item["sk"]["S"] for item in self._query_all(
            KeyConditionExpression="pk = :p AND begins_with(sk, :t)",
            ExpressionAttributeValues=serialize({":p": keys.feed_pk(feed_id), ":t": keys.TX_PREFIX}),
            ProjectionExpression="sk",
        )]
        self._batch_write([{"DeleteRequest": {"Key": serialize({"pk": keys.feed_pk(feed_id), "sk": sk})}}
                           for sk in found])

    @staticmethod
    def _transcript_state_from_item(item: dict[str, Any]) -> TranscriptState:
        data = deserialize(item)
        return TranscriptState.model_validate({k: v for k, v in data.items() if k in TranscriptState.model_fields})
