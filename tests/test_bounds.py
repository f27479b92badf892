"""Every stored string has a bound (earshot.bounds), and the bounds keep each stored item
under DynamoDB's limits: a new field cannot slip in unbounded."""

from __future__ import annotations

import types
import typing
from typing import Any, Literal, get_args, get_origin

import annotated_types
import pytest
from pydantic import BaseModel

from earshot import bounds, models
from earshot.bounds import Bound
from earshot.ingest.refresh import FeedCheck
from earshot.mail.delivery import DigestBatch
from earshot.mail.subscriptions import ConfirmationRequest

# Everything Earshot writes to the table or a queue. A model added to models.py that is
# stored must be listed here; test_every_model_is_considered holds that.
STORED = [
    models.Episode, models.Transcript, models.Chapters, models.FeedInfo, models.FeedState,
    models.MatchedEpisode, models.TranscriptMoment, models.Topic, models.Subscriber,
    models.ConsentEvent, models.StatusChange, models.TokenRecord, FeedCheck,
    models.FeedProvenance, models.CandidateExample, models.DiscoveryCandidate, models.LeftOut,
    models.TranscriptState, models.SegmentProgress, models.BackfillJob,
]
# Models never stored as they are (results in memory), and queue messages bounded by
# their own Field limits.
NOT_STORED = {models.ParsedFeed, models.FetchResult, models.RefreshOutcome}
QUEUED = [ConfirmationRequest, DigestBatch]

DYNAMODB_ITEM_BYTES = 400 * 1024
DYNAMODB_SORT_KEY_BYTES = 1024


def _strip_annotated(annotation: Any) -> tuple[Any, list[Any]]:
    metadata: list[Any] = []
    while get_origin(annotation) is typing.Annotated:
        metadata += list(annotation.__metadata__)
        annotation = get_args(annotation)[0]
    return annotation, metadata


def _is_bound(metadata: list[Any]) -> bool:
    return any(isinstance(m, Bound) or isinstance(m, annotated_types.MaxLen) or
               (isinstance(m, annotated_types.GroupedMetadata) and any(isinstance(x, annotated_types.MaxLen) for x in m))
               for m in metadata)


def _pattern_bound(metadata: list[Any]) -> bool:
    """A regex pattern whose every repetition is bounded ({m,n}, no * or +) bounds the length too."""
    patterns = [getattr(m, "pattern", None) for m in metadata]
    return any(p and "*" not in p and "+" not in p for p in patterns)


def unbounded(model: type[BaseModel]) -> list[str]:
    """The fields (``Model.field`` paths) holding strings or collections without a bound."""
    problems: list[str] = []
    for name, info in model.model_fields.items():
        metadata = list(info.metadata)
        annotation, more = _strip_annotated(info.annotation)
        _walk(f"{model.__name__}.{name}", annotation, metadata + more, problems)
    return problems


def _walk(path: str, annotation: Any, metadata: list[Any], problems: list[str]) -> None:
    annotation, more = _strip_annotated(annotation)
    metadata = metadata + more
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in get_args(annotation):
            if arg is not type(None):
                _walk(path, arg, metadata, problems)
        return
    if origin is Literal or annotation in (int, float, bool, bytes) or annotation.__name__ in ("datetime",):
        return
    if annotation is str:
        if not (_is_bound(metadata) or _pattern_bound(metadata)):
            problems.append(path)
        return
    if origin in (list, tuple, set, frozenset, dict):
        if not _is_bound(metadata):
            problems.append(f"{path} (collection)")
        for arg in get_args(annotation):
            if arg is not Ellipsis:
                _walk(f"{path}[]", arg, [], problems)
        return
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return  # walked as a model of its own
    problems.append(f"{path} ({annotation!r}: unknown to this walk)")


@pytest.mark.parametrize("model", STORED + QUEUED, ids=lambda m: m.__name__)
def test_every_stored_string_and_collection_has_a_bound(model: type[BaseModel]) -> None:
    assert unbounded(model) == []


def test_every_model_is_considered() -> None:
    defined = {m for m in vars(models).values()
               if isinstance(m, type) and issubclass(m, BaseModel) and m.__module__ == models.__name__}
    assert defined - set(STORED) - NOT_STORED == set(), "a new model: list it as STORED (and bound it) or NOT_STORED"


def test_the_walk_finds_an_unbounded_field() -> None:
    class Careless(BaseModel):
        fine: bounds.Title = ""
        added_later: str = ""
        tags: list[bounds.Title] = []

    assert unbounded(Careless) == ["Careless.added_later", "Careless.tags (collection)"]


# ------------------------------------------------------------------ worst cases in bytes
def worst_case_bytes(model: type[BaseModel]) -> int:
    """The most UTF-8 bytes the model's values (and attribute names) can take in an item."""
    total = 0
    for name, info in model.model_fields.items():
        total += len(name) + _worst(info.annotation, list(info.metadata))
    return total


def _worst(annotation: Any, metadata: list[Any]) -> int:
    annotation, more = _strip_annotated(annotation)
    metadata = metadata + more
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return max(_worst(arg, metadata) for arg in get_args(annotation) if arg is not type(None))
    if origin is Literal:
        return max(len(str(a)) for a in get_args(annotation))
    if annotation in (int, float, bool) or getattr(annotation, "__name__", "") == "datetime":
        return 40
    if annotation is str:
        for m in metadata:
            if isinstance(m, Bound):
                return m.max_bytes if m.max_bytes is not None else 4 * (m.max_chars or 0)
            if isinstance(m, annotated_types.MaxLen):
                return 4 * m.max_length
        return 4 * 100  # a pattern-bounded slug
    if origin in (list, tuple):
        count = next(m.max_items for m in metadata if isinstance(m, Bound) and m.max_items is not None)
        return count * max(_worst(arg, []) for arg in get_args(annotation) if arg is not Ellipsis)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return worst_case_bytes(annotation)
    raise AssertionError(annotation)


@pytest.mark.parametrize("model", [models.Episode, models.MatchedEpisode, models.FeedState, models.Subscriber,
                                   models.Topic], ids=lambda m: m.__name__)
def test_each_stored_item_fits_dynamodb_whatever_its_values(model: type[BaseModel]) -> None:
    # Keys, the content hash and the adapter's own attributes: well under 4 KB.
    assert worst_case_bytes(model) + 4 * 1024 < DYNAMODB_ITEM_BYTES


def test_key_attributes_fit_dynamodb_key_limits() -> None:
    # The feed URL is the type index's sort key; an episode id goes into two sort keys
    # (EP#<id> and MATCH#<date>#<feed id>#<id>).
    assert bounds.MAX_FEED_URL_BYTES + len("FEED") < DYNAMODB_SORT_KEY_BYTES
    match_sk = len("MATCH#2026-01-01T00:00:00Z#") + bounds.MAX_KEY_CHARS + 1 + 4 * bounds.MAX_ID_CHARS
    assert match_sk < DYNAMODB_SORT_KEY_BYTES


# ------------------------------------------------------------------ what each bound does
@pytest.mark.parametrize(("field", "value", "expected"), [
    ("title", "t" * 5000, lambda v: len(v) == bounds.MAX_TITLE_CHARS and v.endswith("…")),
    ("guid", "g" * 5000, lambda v: v == bounds.digest("g" * 5000)),
    ("audio_url", "https://cdn.example/" + "a" * 3000, lambda v: v is None),
    ("audio_type", "audio/" + "x" * 300, lambda v: v is None),
    ("summary_html", "<p>" + "<b>x</b> " * 20_000 + "</p>",
     lambda v: len(v) <= bounds.MAX_SUMMARY_HTML_CHARS and v.startswith("<p>x x") and "<b>" not in v),
    ("link", "https://example.com/é" + "l" * 600, lambda v: v is not None),  # 600 characters fit
], ids=["title-clipped", "guid-digested", "url-dropped", "type-dropped", "html-as-text", "url-that-fits"])
def test_a_value_past_its_bound_is_handled_as_its_type_says(field: str, value: str, expected: Any) -> None:
    with bounds.recording() as cuts:
        episode = models.Episode(id="e", **{field: value})
    assert expected(getattr(episode, field))
    assert [c.field for c in cuts] == ([] if field == "link" else [field])


def test_a_transcript_whose_url_is_too_long_is_dropped() -> None:
    long_url = "https://t.example/" + "t" * 3000
    episode = models.Episode(id="e", transcripts=[models.Transcript(url=long_url), models.Transcript(url="https://t/1")],
                             chapters=models.Chapters(url=long_url))
    assert [t.url for t in episode.transcripts] == ["https://t/1"] and episode.chapters is None


def test_keys_past_their_bound_are_refused() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="longer than 200 characters"):
        models.Episode(id="x" * 201)
    state = models.FeedState(feed_id="f-1", url="https://a.example/feed.xml")
    with pytest.raises(ValidationError, match="longer than 1,000 bytes"):
        state.url = "https://a.example/" + "u" * 1000  # assignments are validated too


def test_a_subscription_history_keeps_its_latest_changes() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 1, 1, tzinfo=UTC)
    changes = [models.StatusChange(at=now, status="pending", source=f"s{i}") for i in range(30)]
    sub = models.Subscriber(topic="t", email="a@example.com", address_hash="h", created_at=now,
                            requested=models.ConsentEvent(at=now, source="api"), history=changes)
    assert [c.source for c in sub.history] == [f"s{i}" for i in range(10, 30)]


def test_the_warning_kind_bounds_records_is_a_typed_kind_of_the_feed() -> None:
    assert bounds.OVERSIZED_FIELD in models.WARNING_KINDS
    assert get_args(models.WarningKind) == models.WARNING_KINDS
