"""Topic and match items: a topic and its matches share one partition, newest first."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from earshot.models import BackfillJob, MatchedEpisode, SegmentProgress, Topic
from earshot.store.dynamodb import keys
from earshot.store.dynamodb.base import DynamoTable, deserialize, serialize
from earshot.store.port import iso, new_revision


class TopicItems(DynamoTable):
    # ================================================================= topics
    # (topic, match items: see the key table above)
    # A match item is a snapshot of the episode (MatchedEpisode) so the topic page, feed
    # and digest read one partition. Its sort key orders by publication date; undated
    # episodes sort first ascending (last when read newest-first).

    @staticmethod
    def _topic_from_item(item: dict[str, Any]) -> Topic:
        data = deserialize(item)
        return Topic.model_validate({k: v for k, v in data.items() if k in Topic.model_fields})

    def _topic_item(self, topic: Topic) -> dict[str, Any]:
        data = topic.model_dump(mode="json")
        data["created_at"], data["updated_at"] = iso(topic.created_at), iso(topic.updated_at)
        # Every write of the topic is a change its page may show: a fresh revision.
        data["revision"], data["revised_at"] = new_revision(), iso(datetime.now(UTC))
        return {**keys.topic(topic.slug), "type_pk": "TOPIC", "type_sk": topic.slug, **data}

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
            TableName=self.table_name, Key=serialize(keys.topic(slug))
        )
        return self._topic_from_item(resp["Item"]) if "Item" in resp else None

    def list_topics(self) -> list[Topic]:
        return [self._topic_from_item(item) for item in self._query_all(
            IndexName=keys.TYPE_INDEX,
            KeyConditionExpression="type_pk = :t",
            ExpressionAttributeValues=serialize({":t": "TOPIC"}),
        )]

    def delete_topic(self, slug: str) -> bool:
        """Delete a topic and all its matches; False if there was no such topic."""
        resp = self.client.delete_item(
            TableName=self.table_name, Key=serialize(keys.topic(slug)),
            ReturnValues="ALL_OLD",
        )
        self._delete_matches(slug, self._match_keys(slug))
        self.client.delete_item(TableName=self.table_name, Key=serialize(keys.backfill(slug)))
        return "Attributes" in resp

    def _revise_topic(self, slug: str) -> None:
        """A fresh revision on the topic item, after the match writes it covers (one
        UpdateItem; the ``type`` index does not project it, so it writes nothing there).
        A topic removed meanwhile is not brought back as a bare item."""
        self._if(
            "update_item", Key=serialize(keys.topic(slug)),
            UpdateExpression="SET revision = :r, revised_at = :t",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues=serialize({":r": new_revision(), ":t": iso(datetime.now(UTC))}),
        )

    def _match_keys(self, slug: str, *, feed_id: str | None = None) -> list[str]:
        """Sort keys of a topic's match items (optionally one feed's), keys only read."""
        values = {":p": keys.topic_pk(slug), ":m": keys.MATCH_PREFIX}
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
        if limit is not None:
            kwargs["Limit"] = limit  # a Query bills what it reads: stop reading at the limit, not the page
        out: list[MatchedEpisode] = []
        for item in self._query_all(
            KeyConditionExpression="pk = :p AND begins_with(sk, :m)",
            ExpressionAttributeValues=serialize({":p": keys.topic_pk(slug), ":m": keys.MATCH_PREFIX}),
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
        new_keys = {keys.match_sk(m) for m in matches}
        # No episode to re-check (only new episodes' matches): nothing can be stale, and
        # the topic's matches (a Query over its whole partition) are not read.
        stale = [sk for sk in self._match_keys(slug, feed_id=feed_id)
                 if keys.episode_of_match_sk(sk) in ids and sk not in new_keys] if ids else []
        self._put_matches(slug, matches)
        self._delete_matches(slug, stale)
        if matches or stale:
            self._revise_topic(slug)
        return len(stale)

    def replace_topic_matches(self, slug: str, matches: list[MatchedEpisode]) -> int:
        new_keys = {keys.match_sk(m) for m in matches}
        stale = [sk for sk in self._match_keys(slug) if sk not in new_keys]
        self._put_matches(slug, matches)
        self._delete_matches(slug, stale)
        if matches or stale:
            self._revise_topic(slug)
        return len(stale)

    def _put_matches(self, slug: str, matches: list[MatchedEpisode], *, run_id: str | None = None) -> None:
        requests = []
        for match in matches:
            data = match.model_dump(mode="json")
            data["published"] = iso(match.published)
            item = {**keys.match(slug, match), **data, "backfill_run": run_id}
            requests.append({"PutRequest": {"Item": serialize(item)}})
        self._batch_write(requests)

    def _delete_matches(self, slug: str, sort_keys: Iterable[str]) -> None:
        self._batch_write([
            {"DeleteRequest": {"Key": serialize({"pk": keys.topic_pk(slug), "sk": sk})}} for sk in sort_keys
        ])


    # ============================================================== backfills
    # One item per topic (keys.backfill) holds the run and a map of its segments, so a
    # worker updates only its own segment's entry (SET segments.#n), conditioned on the
    # run still being the topic's.

    def start_backfill(self, job: BackfillJob) -> None:
        data = job.model_dump(mode="json")
        data["segments"] = {str(k): v for k, v in data["segments"].items()}
        self.client.put_item(TableName=self.table_name, Item=serialize({**keys.backfill(job.slug), **data}))

    @staticmethod
    def _job_from_item(item: dict[str, Any]) -> BackfillJob:
        data = deserialize(item)
        return BackfillJob.model_validate({k: v for k, v in data.items() if k in BackfillJob.model_fields})

    def get_backfill(self, slug: str) -> BackfillJob | None:
        resp = self.client.get_item(TableName=self.table_name, Key=serialize(keys.backfill(slug)),
                                    ConsistentRead=True)
        return self._job_from_item(resp["Item"]) if "Item" in resp else None

    def save_segment_progress(self, slug: str, run_id: str, segment: int,
                              progress: SegmentProgress) -> BackfillJob | None:
        try:
            resp = self.client.update_item(
                TableName=self.table_name, Key=serialize(keys.backfill(slug)),
                UpdateExpression="SET #segments.#n = :p",
                ConditionExpression="run_id = :r",
                ExpressionAttributeNames={"#segments": "segments", "#n": str(segment)},
                ExpressionAttributeValues=serialize({":p": progress.model_dump(mode="json"), ":r": run_id}),
                ReturnValues="ALL_NEW",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return None
        return self._job_from_item(resp["Attributes"])

    def finish_backfill(self, slug: str, run_id: str, *, removed: int, now: datetime) -> bool:
        return self._if(
            "update_item", Key=serialize(keys.backfill(slug)),
            UpdateExpression="SET finished_at = :f, removed = :n",
            ConditionExpression="run_id = :r",
            ExpressionAttributeValues=serialize({":f": iso(now), ":n": removed, ":r": run_id}),
        )

    def put_run_matches(self, slug: str, run_id: str, matches: list[MatchedEpisode]) -> None:
        self._put_matches(slug, matches, run_id=run_id)
        if matches:
            self._revise_topic(slug)

    def drop_matches_outside_run(self, slug: str, run_id: str) -> int:
        stale = [item["sk"]["S"] for item in self._query_all(
            KeyConditionExpression="pk = :p AND begins_with(sk, :m)",
            FilterExpression="attribute_not_exists(backfill_run) OR backfill_run <> :r",
            ExpressionAttributeValues=serialize({":p": keys.topic_pk(slug), ":m": keys.MATCH_PREFIX, ":r": run_id}),
            ProjectionExpression="sk",
        )]
        self._delete_matches(slug, stale)
        if stale:
            self._revise_topic(slug)
        return len(stale)
