"""The queue port on the local database: messages wait in a table until a local
"event source" (:meth:`LocalRuntime.drain`) hands them to a handler, as SQS would."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from earshot_local.sqlite_store import SqliteStore


class SqliteQueue:
    def __init__(self, store: SqliteStore, name: str) -> None:
        self.store, self.name = store, name

    def send_messages(self, bodies: list[dict[str, Any]], *, delay_s: int = 0) -> int:
        # No delay locally: the next drain round (or the next run) is the later delivery.
        return self.store.enqueue(self.name, bodies, datetime.now(UTC))

    def receive_event(self, *, max_messages: int = 10) -> dict[str, Any] | None:
        """Up to ``max_messages`` messages shaped as the SQS -> Lambda event source does."""
        messages = self.store.peek_messages(self.name, max_messages)
        if not messages:
            return None
        arn = f"arn:aws:sqs:local:000000000000:earshot-{self.name}"
        return {"Records": [{
            "messageId": str(msg_id), "receiptHandle": str(msg_id), "body": body,
            "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}, "md5OfBody": "",
            "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": "local",
        } for msg_id, body in messages]}

    def delete(self, event: dict[str, Any], *, keep: set[str] = frozenset()) -> int:  # type: ignore[assignment]
        done = [int(r["messageId"]) for r in event["Records"] if r["messageId"] not in keep]
        self.store.delete_messages(done)
        return len(done)

    def depth(self) -> int:
        return len(self.store.peek_messages(self.name, 1_000_000))
