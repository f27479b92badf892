"""Dispatching: find the feeds whose next check is due and queue them for the worker."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel

from earshot.ingest.refresh import FeedCheck
from earshot.queue import QueuePort
from earshot.store import Store


class DispatchRequest(BaseModel):
    """The scheduler's payload (template.yaml ``Input``). ``force`` queues every active
    feed regardless of its next check (``earshot run`` uses it to check everything now)."""

    source: str = "earshot.scheduler"
    force: bool = False


class DispatchResult(BaseModel):
    queued: int


def dispatch_due_feeds(repo: Store, queue: QueuePort, *, now: datetime | None = None,
                       force: bool = False) -> DispatchResult:
    """Queue a :class:`FeedCheck` for every due feed (read from the sharded ``due`` index)."""
    now = now or datetime.now(UTC)
    checks = [FeedCheck.from_state(f).model_dump(mode="json", exclude_none=True)
              for f in repo.due_feeds(now, include_not_due=force)]
    queue.send_messages(checks)
    return DispatchResult(queued=len(checks))
