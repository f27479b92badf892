"""The AWS test double: Earshot's deployed stack emulated in-process by moto, for the
tests of the AWS adapters and of the handlers as deployed. Never the local product's
database (that is SQLite, ``earshot_local``).

``moto`` is started in-process and the DynamoDB tables, SQS queues and SES configuration
set are created from ``template.yaml``'s own definitions (key schemas, GSIs, projections),
so local runs and tests cannot drift from what is deployed. The real Lambda handlers in
``functions/`` are then invoked with real event shapes.

Every AWS request made through boto3 is counted by operation with a botocore event hook
(``aws_calls``), so tests can assert request counts.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from types import SimpleNamespace
from typing import Any

import boto3

from earshot import runtime
from earshot.settings import Settings
from earshot_local.functions import (  # noqa: F401 - re-exported for the tests
    EVENTS_DIR,
    FUNCTIONS_DIR,
    HANDLER_ENV,
    REGION,
    REPO_ROOT,
    TEMPLATE_PATH,
    LambdaContext,
    invoke,
    load_handler,
    load_template,
    sample_event,
)

# Logical id in template.yaml -> (environment variable, local physical name)
TABLES = {"Table": ("TABLE_NAME", "earshot")}
QUEUES = {
    "FetchQueue": ("FETCH_QUEUE_URL", "earshot-fetch"),
    "FetchDLQ": (None, "earshot-fetch-dlq"),
    "DigestQueue": ("DIGEST_QUEUE_URL", "earshot-digest"),
    "DigestDLQ": (None, "earshot-digest-dlq"),
    "ConfirmationQueue": ("CONFIRMATION_QUEUE_URL", "earshot-confirmations"),
    "ConfirmationDLQ": (None, "earshot-confirmations-dlq"),
    "TranscriptQueue": ("TRANSCRIPT_QUEUE_URL", "earshot-transcripts"),
    "TranscriptDLQ": (None, "earshot-transcripts-dlq"),
    "BackfillQueue": ("BACKFILL_QUEUE_URL", "earshot-backfill"),
    "BackfillDLQ": (None, "earshot-backfill-dlq"),
}
BUCKETS = {"TranscriptBucket": ("TRANSCRIPT_BUCKET", "earshot-transcript-text")}
LOCAL_SENDER = "digest@earshot.example"

# Environment the handlers see locally: quiet Powertools, fake credentials, no tracing.
LOCAL_ENV = {
    **HANDLER_ENV,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "EARSHOT_SENDER": f"Earshot <{LOCAL_SENDER}>",
    "EARSHOT_SENDER_IDENTITY": LOCAL_SENDER,
    "SES_CONFIGURATION_SET": "earshot",
}


def table_definition(logical_id: str, table_name: str) -> dict[str, Any]:
    """CreateTable arguments taken from the template's own resource definition."""
    props = load_template()["Resources"][logical_id]["Properties"]
    args: dict[str, Any] = {
        "TableName": table_name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if props.get("GlobalSecondaryIndexes"):
        args["GlobalSecondaryIndexes"] = [
            {"IndexName": g["IndexName"], "KeySchema": g["KeySchema"], "Projection": g["Projection"]}
            for g in props["GlobalSecondaryIndexes"]
        ]
    return args


class EmbeddedBackend:
    """moto-backed stand-in for the deployed stack. Use as a context manager."""

    def __init__(self, *, extra_env: dict[str, str] | None = None) -> None:
        self.extra_env = dict(extra_env or {})
        self.aws_calls: Counter[str] = Counter()
        self.host_slot_writes = 0  # the UpdateItems of aws_calls that lease or free a host slot
        self.aws_seconds = 0.0
        self._mock: Any = None
        self._saved_env: dict[str, str | None] = {}
        self.env: dict[str, str] = {}

    # -- lifecycle ---------------------------------------------------------
    def __enter__(self) -> "EmbeddedBackend":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        from moto import mock_aws  # dev/CLI dependency only; never imported in Lambda

        env = {**LOCAL_ENV, **self.extra_env}
        self._set_env(env)
        self._mock = mock_aws()
        self._mock.start()
        _read_one_partition_per_query()
        self._create_resources()
        self._set_env(self.env)
        runtime.reset()
        self._hook_call_counter()

    def stop(self) -> None:
        if self._mock is None:
            return
        self._mock.stop()
        self._mock = None
        for key, old in self._saved_env.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
        self._saved_env.clear()
        runtime.reset()

    @property
    def settings(self) -> Settings:
        return runtime.settings()

    def _set_env(self, env: dict[str, str]) -> None:
        for key, value in env.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def _create_resources(self) -> None:
        ddb = boto3.client("dynamodb", region_name=REGION)
        for logical_id, (env_name, name) in TABLES.items():
            ddb.create_table(**table_definition(logical_id, name))
            self.env[env_name] = name
        sqs = boto3.client("sqs", region_name=REGION)
        for logical_id, (env_name, name) in QUEUES.items():
            props = load_template()["Resources"][logical_id].get("Properties", {})
            attrs = {"VisibilityTimeout": str(props.get("VisibilityTimeout", 30))}
            url = sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
            if env_name:
                self.env[env_name] = url
        s3 = boto3.client("s3", region_name=REGION)
        for _logical_id, (env_name, name) in BUCKETS.items():
            s3.create_bucket(Bucket=name)
            self.env[env_name] = name
        sesv2 = boto3.client("sesv2", region_name=REGION)
        sesv2.create_email_identity(EmailIdentity=LOCAL_SENDER)
        sesv2.create_configuration_set(ConfigurationSetName="earshot")
        boto3.client("ses", region_name=REGION).verify_email_identity(EmailAddress=LOCAL_SENDER)
        set_identity_verified(LOCAL_SENDER, True)

    # -- AWS call accounting ------------------------------------------------
    def _hook_call_counter(self) -> None:
        session = boto3._get_default_session() if boto3.DEFAULT_SESSION else boto3.setup_default_session() or boto3.DEFAULT_SESSION
        events = session._session.get_component("event_emitter")  # type: ignore[union-attr]
        starts: dict[int, float] = {}

        def before(event_name: str, params: Any = None, context: Any = None, **_: Any) -> None:
            # event name: before-call.<service>.<Operation>
            operation = event_name.rsplit(".", 1)[-1]
            self.aws_calls[operation] += 1
            if operation == "UpdateItem" and b'"HOST#' in ((params or {}).get("body") or b""):
                self.host_slot_writes += 1
            if context is not None:
                starts[id(context)] = time.perf_counter()

        def after(context: Any = None, **_: Any) -> None:
            started = starts.pop(id(context), None) if context is not None else None
            if started is not None:
                self.aws_seconds += time.perf_counter() - started

        events.register("before-call", before, unique_id="earshot-count-before")
        events.register("after-call", after, unique_id="earshot-count-after")
        events.register("before-call.sesv2.GetAccount", _ses_get_account, unique_id="earshot-ses-get-account")

    def reset_counters(self) -> None:
        self.aws_calls.clear()
        self.host_slot_writes = 0
        self.aws_seconds = 0.0

    # -- running the real handlers -----------------------------------------
    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        """Run ``functions/<function>/app.py:handler`` with ``event`` and a fake context."""
        return invoke(function, event)

    def receive_sqs_event(self, queue_url: str, *, max_messages: int = 10) -> dict[str, Any] | None:
        """Pull up to 10 messages and shape them as the SQS -> Lambda event source does."""
        sqs = boto3.client("sqs", region_name=REGION)
        resp = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=max_messages,
                                   AttributeNames=["All"], WaitTimeSeconds=0)
        messages = resp.get("Messages", [])
        if not messages:
            return None
        arn = f"arn:aws:sqs:{REGION}:123456789012:{queue_url.rsplit('/', 1)[-1]}"
        return {"Records": [{
            "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
            "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
            "eventSource": "aws:sqs", "eventSourceARN": arn, "awsRegion": REGION,
        } for m in messages]}

    def delete_messages(self, queue_url: str, event: dict[str, Any], *, keep: set[str] = frozenset()) -> None:
        """Delete an event's messages except ``keep`` (failed ones), as the event source does."""
        sqs = boto3.client("sqs", region_name=REGION)
        done = [r for r in event["Records"] if r["messageId"] not in keep]
        for start in range(0, len(done), 10):
            sqs.delete_message_batch(QueueUrl=queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(done[start:start + 10])
            ])

    def send_confirmations(self) -> list[Any]:
        """Hand the queued subscribe requests to the confirmation mailer, as the event
        source does right after the API answers; returns each invocation's response."""
        return self.drain_queue("confirmations", self.env["CONFIRMATION_QUEUE_URL"])

    def drain_queue(self, function: str, queue_url: str, *, max_rounds: int = 100_000) -> list[Any]:
        """Feed a queue's messages to a function like the event source mapping does:
        messages the handler reports as failed stay on the queue (visible again after the
        visibility timeout), the rest are deleted; an invocation error (Powertools raises
        when every record failed) keeps them all. Returns each invocation's response."""
        responses = []
        for _ in range(max_rounds):
            event = self.receive_sqs_event(queue_url)
            if event is None:
                break
            response = invoke_as_event_source(function, event)
            responses.append(response)
            failed = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}
            self.delete_messages(queue_url, event, keep=failed)
        return responses


def invoke_as_event_source(function: str, event: dict[str, Any]) -> Any:
    """Invoke a queue consumer; an invocation error becomes "every record failed", which is
    what the SQS event source makes of it."""
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    try:
        return invoke(function, event)
    except BatchProcessingError:
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"]]}


_query_scope = threading.local()


def _read_one_partition_per_query() -> None:
    """Make moto's base-table Query read one partition, as DynamoDB does.

    moto answers every Query on a table by sorting *all* items of the table and then
    filtering on the partition key, so each ``episode_hashes`` Query costs O(table). With
    100,000 stored episodes that emulator artefact dominated a local ingest cycle (about
    0.25 s per Query). Here ``Table.all_items`` returns only the queried partition for the
    duration of a base-table Query; results, order and paging are moto's own. Index
    queries are left alone. Idempotent; effective only for the emulator.
    """
    import inspect

    from moto.dynamodb.models.table import Table

    if getattr(Table.query, "_earshot_one_partition", False):
        return
    original_query, original_all_items = Table.query, Table.all_items
    signature = inspect.signature(original_query)

    def all_items(self: Any) -> Any:
        if getattr(_query_scope, "table", None) is self:
            partition = list(self.items.get(_query_scope.hash_key, {}).values())
            return sorted(partition, key=lambda item: item.range_key)
        return original_all_items(self)

    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, *args, **kwargs).arguments
        if bound.get("index_name") or bound.get("hash_key") is None or not self.range_key_attr:
            return original_query(self, *args, **kwargs)
        _query_scope.table, _query_scope.hash_key = self, bound["hash_key"]
        try:
            return original_query(self, *args, **kwargs)
        finally:
            _query_scope.table = _query_scope.hash_key = None

    query._earshot_one_partition = True  # type: ignore[attr-defined]
    Table.query, Table.all_items = query, all_items  # type: ignore[method-assign]


def set_identity_verified(identity: str, verified: bool) -> None:
    """Set what SESv2 GetEmailIdentity answers for ``VerifiedForSendingStatus`` (moto 5.2
    always answers False, even for an identity verified through SES v1)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    ses_backends[DEFAULT_ACCOUNT_ID][REGION].email_identities[identity].verified_for_sending_status = verified


# moto 5.2 does not implement SESv2 GetAccount, which the digest sender reads for its send
# rate. Answer it locally (the same before-call hook botocore's Stubber uses) with the quota
# of an account out of the SES sandbox. The deployed stack never runs this.
LOCAL_MAX_SEND_RATE = 14.0


def _ses_get_account(**_: Any) -> tuple[Any, dict[str, Any]]:
    http = SimpleNamespace(status_code=200, headers={})
    return http, {
        "ProductionAccessEnabled": True,
        "SendingEnabled": True,
        "EnforcementStatus": "HEALTHY",
        "SendQuota": {"Max24HourSend": 50000.0, "MaxSendRate": LOCAL_MAX_SEND_RATE, "SentLast24Hours": 0.0},
    }


def serialize_dynamodb_calls(client: Any) -> None:
    """Make each call of a DynamoDB client atomic, as the service is per request: moto does
    not lock between threads, and a test of concurrent conditional writes must check
    Earshot, not a race in the double."""
    lock = threading.Lock()
    for name in ("query", "update_item", "get_item", "put_item", "delete_item", "batch_write_item"):
        method = getattr(client, name)

        def locked(*args: object, _method: Any = method, **kwargs: object) -> object:
            with lock:
                return _method(*args, **kwargs)

        setattr(client, name, locked)
