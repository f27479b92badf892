"""Where two sources of truth must agree, a test says so: the template and the code, a
projection and a model, the shipped sample events and the handlers they are for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from earshot.ingest.refresh import FeedCheck
from earshot.models import FeedState
from earshot.store.dynamodb import DUE_PROJECTION, TYPE_INDEXED_FEED_ATTRIBUTES
from earshot_local.functions import EVENTS_DIR, load_template
from earshot_local.runtime import LocalRuntime
from earshot_local.settings import LocalSettings

TEMPLATE = load_template()


def _index(name: str) -> dict:
    indexes = TEMPLATE["Resources"]["Table"]["Properties"]["GlobalSecondaryIndexes"]
    return next(i for i in indexes if i["IndexName"] == name)


def test_due_index_projects_exactly_what_a_fetch_check_carries() -> None:
    projected = set(_index("due")["Projection"]["NonKeyAttributes"])
    assert projected == set(DUE_PROJECTION)
    assert projected == set(FeedCheck.model_fields) - {"feed_id"}, "the dispatcher builds FeedCheck from it"
    assert projected <= set(FeedState.model_fields)


def test_type_index_projects_the_feed_attributes_a_check_may_skip() -> None:
    projected = set(_index("type")["Projection"]["NonKeyAttributes"])
    assert {a for a in TYPE_INDEXED_FEED_ATTRIBUTES if not a.startswith("type_")} <= projected


# Which function each sample event is for (by file-name prefix).
EVENT_FUNCTIONS = {"api_": "api", "ses_": "bounces", "digest_scheduled": "digest", "digest_sender": "digest_sender",
                   "dispatcher": "dispatcher", "fetch_worker": "fetch_worker", "confirmations_": "confirmations",
                   "discovery_": "discovery", "transcript_worker": "transcript_worker", "backfill_worker": "backfill_worker"}


def _function_for(event_file: Path) -> str:
    return next(f for prefix, f in EVENT_FUNCTIONS.items() if event_file.name.startswith(prefix))


@pytest.mark.parametrize("event_file", sorted(EVENTS_DIR.glob("*.json")), ids=lambda p: p.stem)
def test_every_sample_event_is_accepted_by_its_handler(event_file: Path, tmp_path: Path) -> None:
    """Shipped events run as shipped, on an empty local database: no exception escapes, an
    API answer is never a 5xx, an SQS batch reports no record as failed for its shape."""
    with LocalRuntime(LocalSettings(EARSHOT_DB=tmp_path / "earshot.db", EARSHOT_OUTBOX=tmp_path / "outbox")) as local:
        result = local.invoke(_function_for(event_file), json.loads(event_file.read_text()))
    assert isinstance(result, dict)
    if "statusCode" in result:
        assert result["statusCode"] < 500, result
    assert result.get("batchItemFailures", []) == [], result


def test_every_environment_variable_the_template_sets_is_a_setting() -> None:
    """A variable the template sets that no setting reads would be a tunable nobody tunes."""
    from earshot.settings import Settings

    aliases = {f.alias for f in Settings.model_fields.values()}
    powertools = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}
    variables = set(TEMPLATE["Globals"]["Function"].get("Environment", {}).get("Variables", {}))
    for resource in TEMPLATE["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            variables |= set(resource["Properties"].get("Environment", {}).get("Variables", {}))
    assert variables - powertools <= aliases, f"not read by Settings: {variables - powertools - aliases}"


def test_digest_batches_fit_the_queue_message_model() -> None:
    from earshot.mail.delivery import DigestBatch
    from earshot.settings import Settings

    function = TEMPLATE["Resources"]["DigestFunction"]["Properties"]["Environment"]["Variables"]
    size = Settings(EARSHOT_DIGEST_BATCH_SIZE=function["EARSHOT_DIGEST_BATCH_SIZE"]).digest_batch_size
    assert size <= DigestBatch.model_fields["recipients"].metadata[-1].max_length
