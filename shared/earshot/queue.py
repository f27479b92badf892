"""The queue port and its SQS adapter: the only module that talks to SQS.

Locally the same port is a table in the SQLite database (``earshot_local.queue``).
"""

from __future__ import annotations

import json
from typing import Any, Protocol

import boto3

MAX_BATCH = 10  # SendMessageBatch limit
MAX_BATCH_BYTES = 256 * 1024
MAX_DELAY_S = 900  # SQS DelaySeconds limit (15 minutes)


class QueuePort(Protocol):
    def send_messages(self, bodies: list[dict[str, Any]], *, delay_s: int = 0) -> int:
        """Queue JSON bodies, each delivered no sooner than ``delay_s`` from now; returns
        how many were accepted (all, or it raises)."""
        ...


class Queue:
    """Send JSON messages to one SQS queue, batched."""

    def __init__(self, queue_url: str, *, client: Any | None = None) -> None:
        self.queue_url = queue_url
        self.client: Any = client or boto3.client("sqs")

    def send_messages(self, bodies: list[dict[str, Any]], *, delay_s: int = 0) -> int:
        """SendMessageBatch in groups of 10 (and under 256 KiB); retries entries SQS
        reports as failed once, then raises so the caller's invocation is retried.
        ``delay_s`` (at most 15 minutes) holds the messages back before delivery."""
        sent = 0
        delay = {"DelaySeconds": max(0, min(MAX_DELAY_S, int(delay_s)))} if delay_s else {}
        for group in _groups([json.dumps(b, separators=(",", ":")) for b in bodies]):
            entries = [{"Id": str(i), "MessageBody": body, **delay} for i, body in enumerate(group)]
            for _attempt in range(2):
                resp = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
                sent += len(resp.get("Successful", []))
                failed_ids = {f["Id"] for f in resp.get("Failed", [])}
                entries = [e for e in entries if e["Id"] in failed_ids]
                if not entries:
                    break
            else:
                raise RuntimeError(f"SQS refused {len(entries)} messages for {self.queue_url}")
        return sent


def _groups(bodies: list[str]) -> list[list[str]]:
    groups: list[list[str]] = [[]]
    size = 0
    for body in bodies:
        if len(groups[-1]) == MAX_BATCH or size + len(body) > MAX_BATCH_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(body)
        size += len(body)
    return [g for g in groups if g]
