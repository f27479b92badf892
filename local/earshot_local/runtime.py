"""The local runtime: the deployed handlers and domain, on this machine's adapters.

    store          SqliteStore           (DynamoDB deployed)
    queues         SqliteQueue           (SQS deployed), drained by :meth:`LocalRuntime.drain`
                                         (the transcript queue by ``earshot run``);
                                         ``earshot serve`` drains the confirmation queue
                                         in the background, as the event source would
    mail           OutboxMailer          (SES deployed): .eml files, optionally SMTP
    transcripts    SqliteStore           (S3 deployed): the archive's text in the same file
    handlers       functions/*/app.py    the same code Lambda runs, via earshot.runtime.use()
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from earshot import runtime
from earshot.settings import Settings
from earshot_local import functions
from earshot_local.outbox import OutboxMailer
from earshot_local.queue import SqliteQueue
from earshot_local.settings import LocalSettings, domain_settings
from earshot_local.sqlite_store import SqliteStore

SERVED_URL_KEY = "serve.public_base_url"


def _handler_logs_to_stderr() -> None:
    """The handlers' log lines go to stderr here, as ``sam local invoke`` prints them:
    stdout is for results. (Imported after HANDLER_ENV is set, which sets the log level.)"""
    from earshot.observability import logger

    handler = logger.registered_handler
    if isinstance(handler, logging.StreamHandler) and not isinstance(handler.stream, _CurrentStderr):
        handler.setStream(_CurrentStderr())


class _CurrentStderr:
    """Whatever ``sys.stderr`` is when a line is written (it may be replaced meanwhile)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class LocalRuntime:
    """Opens the local database and installs the local adapters. A context manager."""

    def __init__(self, local: LocalSettings | None = None, *, settings: Settings | None = None) -> None:
        self.local = local or LocalSettings.from_env()
        self.store = SqliteStore(self.local.db)
        self.settings = self._links_to_served(settings or domain_settings())
        self.fetch_queue = SqliteQueue(self.store, "fetch")
        self.digest_queue = SqliteQueue(self.store, "digest")
        self.confirmation_queue = SqliteQueue(self.store, "confirmation")
        self.transcript_queue = SqliteQueue(self.store, "transcript")
        self.backfill_queue = SqliteQueue(self.store, "backfill")
        self.mailer = OutboxMailer(self.local.outbox_dir, smtp_url=self.local.smtp_url, sender=self.settings.sender)
        for key, value in functions.HANDLER_ENV.items():
            os.environ.setdefault(key, value)
        _handler_logs_to_stderr()
        runtime.use(settings=self.settings, store=self.store, fetch_queue=self.fetch_queue,
                    digest_queue=self.digest_queue, confirmation_queue=self.confirmation_queue, mailer=self.mailer,
                    transcript_queue=self.transcript_queue, transcript_archive=self.store,
                    backfill_queue=self.backfill_queue)

    def _links_to_served(self, settings: Settings) -> Settings:
        """Links in mails and pages go to ``EARSHOT_PUBLIC_BASE_URL`` when set, else to
        where ``earshot serve`` last listened on this database (so a digest sent by
        another command links to the running server), else to the default."""
        if "public_base_url" not in settings.model_fields_set:
            served = self.store.get_meta(SERVED_URL_KEY)
            if served:
                return settings.with_(public_base_url=served)
        return settings

    def record_served_url(self, url: str) -> None:
        """``earshot serve`` says where it listens, for the other commands."""
        self.store.put_meta(SERVED_URL_KEY, url)

    @property
    def db_path(self) -> Path:
        return self.local.db

    def __enter__(self) -> "LocalRuntime":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        runtime.reset()
        self.store.close()

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        return functions.invoke(function, event)

    def send_confirmations(self) -> list[Any]:
        """Hand queued subscribe requests to the confirmation mailer (what the deployed
        stack's event source does right after the API answers)."""
        return self.drain(self.confirmation_queue, "confirmations")

    def drain(self, queue: SqliteQueue, function: str, *, max_rounds: int = 10_000) -> list[Any]:
        """Hand a queue's messages to a function 10 at a time, as the SQS event source
        does: messages the handler reports failed stay queued; the drain stops when a
        round makes no progress (they wait for the next run)."""
        responses = []
        for _ in range(max_rounds):
            event = queue.receive_event()
            if event is None:
                break
            try:
                response = self.invoke(function, event)
            except BatchProcessingError:  # every record failed: the invocation errs, all stay queued
                response = {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]]}
            responses.append(response)
            failed = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}
            if not queue.delete(event, keep=failed):
                break
        return responses
