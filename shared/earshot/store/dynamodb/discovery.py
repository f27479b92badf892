"""Discovery items: cached directory answers (TTL) and a topic's candidate feeds."""

from __future__ import annotations

from datetime import datetime

from earshot.models import CandidateStatus, DiscoveryCandidate
from earshot.store.dynamodb import keys
from earshot.store.dynamodb.base import DynamoTable, deserialize, serialize


class DiscoveryItems(DynamoTable):
    def get_directory_answer(self, key: str, *, now: datetime) -> str | None:
        resp = self.client.get_item(TableName=self.table_name, Key=serialize(keys.directory_answer(key)))
        if "Item" not in resp:
            return None
        item = deserialize(resp["Item"])
        # TTL deletion lags by up to days: an expired answer is treated as gone here.
        if int(item.get("expires_at", 0)) <= int(now.timestamp()):
            return None
        return str(item["payload"])

    def put_directory_answer(self, key: str, payload: str, *, expires_at: int) -> None:
        self.client.put_item(TableName=self.table_name, Item=serialize(
            {**keys.directory_answer(key), "payload": payload, "expires_at": expires_at}))

    def record_candidates(self, slug: str, candidates: list[DiscoveryCandidate]) -> list[DiscoveryCandidate]:
        proposed = []
        for found in candidates:
            stored = self._candidate(slug, found.key)
            if stored is not None and stored.status != "proposed":
                continue  # decided once: never proposed again
            found = found.model_copy(update={"status": "proposed"})
            # Conditional: a decision written meanwhile (a concurrent approve) is not undone.
            if self._if("put_item", Item=serialize(self._candidate_item(slug, found)),
                        ConditionExpression="attribute_not_exists(pk) OR candidate_status = :p",
                        ExpressionAttributeValues=serialize({":p": "proposed"})):
                proposed.append(found)
        return proposed

    def list_candidates(self, slug: str) -> list[DiscoveryCandidate]:
        found = [DiscoveryCandidate.model_validate_json(deserialize(item)["data"]) for item in self._query_all(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :c)",
            ExpressionAttributeValues=serialize({":pk": keys.candidates_pk(slug), ":c": "CANDIDATE#"}),
        )]
        return sorted(found, key=lambda c: (-c.score, c.feed_url))

    def decide_candidate(self, slug: str, key: str, status: CandidateStatus, *, now: datetime) -> bool:
        stored = self._candidate(slug, key)
        if stored is None:
            return False
        decided = stored.model_copy(update={"status": status, "decided_at": now})
        self.client.put_item(TableName=self.table_name, Item=serialize(self._candidate_item(slug, decided)))
        return True

    def _candidate(self, slug: str, key: str) -> DiscoveryCandidate | None:
        resp = self.client.get_item(TableName=self.table_name, Key=serialize(keys.candidate(slug, key)))
        if "Item" not in resp:
            return None
        return DiscoveryCandidate.model_validate_json(deserialize(resp["Item"])["data"])

    @staticmethod
    def _candidate_item(slug: str, found: DiscoveryCandidate) -> dict[str, object]:
        return {**keys.candidate(slug, found.key), "candidate_status": found.status, "data": found.model_dump_json()}
