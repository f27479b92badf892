"""Table-driven tests for earshot.identity: natural ids, content keys, the rule for items
that share an id, and keeping stored episodes' ids (the doctests there are the short spec)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from earshot.identity import (
    Candidate,
    IdChoice,
    StoredIdKeeper,
    assign_ids,
    content_key,
    derived_id,
    keep_stored_ids,
    stable_episode_id,
    tracking_free_url,
)
from earshot.models import Episode

_DATE = datetime(2024, 5, 1, tzinfo=UTC)


# ------------------------------------------------------------------ natural id
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(("guid-1", "https://a/1.mp3", "https://a/1", "T", _DATE), "guid-1",
                     id="guid-first"),
        pytest.param(("  guid-1\n", None, None, "", None), "guid-1", id="guid-stripped"),
        pytest.param(("", "https://a/1.mp3", "https://a/1", "T", _DATE), "https://a/1.mp3",
                     id="then-enclosure"),
        pytest.param(("  ", None, "https://a/1", "T", _DATE), "https://a/1", id="then-link"),
        pytest.param((None, None, None, "T", _DATE), "h:", id="then-hash"),
        pytest.param(("g" * 200, None, None, "", None), "g" * 200, id="200-chars-kept"),
        pytest.param(("g" * 201, None, None, "", None), "h:", id="201-chars-hashed"),
    ],
)
def test_stable_episode_id_precedence(args: tuple, expected: str) -> None:
    result = stable_episode_id(*args)
    if expected == "h:":
        assert result.startswith("h:") and len(result) == 26
    else:
        assert result == expected


def test_stable_episode_id_hash_depends_on_title_and_date_only() -> None:
    may_1, may_2 = "Wed, 01 May 2024 10:00:00 GMT", "Thu, 02 May 2024 10:00:00 GMT"
    base = stable_episode_id(None, None, None, "Title", may_1, "notes")
    assert base == stable_episode_id(None, None, None, " Title ", may_1, "edited notes")
    assert base != stable_episode_id(None, None, None, "Title", may_2)
    assert base != stable_episode_id(None, None, None, "Other", may_1)


def test_stable_episode_id_uses_the_summary_only_without_title_and_date() -> None:
    first = stable_episode_id(None, None, None, "", None, "first post")
    assert first != stable_episode_id(None, None, None, "", None, "second post")
    assert first == stable_episode_id(None, None, None, None, "", " first post ")


# ------------------------------------------------------------------ content key
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("https://cdn.example.com/a.mp3", "cdn.example.com/a.mp3", id="plain"),
        pytest.param("http://CDN.Example.com/A.mp3", "cdn.example.com/A.mp3", id="host-lowered-path-kept"),
        pytest.param("https://dts.podtrac.com/redirect.mp3/cdn.example.com/a.mp3", "cdn.example.com/a.mp3",
                     id="podtrac"),
        pytest.param("https://www.podtrac.com/pts/redirect.mp3/cdn.example.com/a.mp3", "cdn.example.com/a.mp3",
                     id="podtrac-pts"),
        pytest.param("http://www.podtrac.com/pts/redirect.mp3?http://cdn.example.com/a.mp3", "cdn.example.com/a.mp3",
                     id="podtrac-query-form"),
        pytest.param("https://chtbl.com/track/AB12/cdn.example.com/a.mp3", "cdn.example.com/a.mp3", id="chartable"),
        pytest.param("https://pdst.fm/e/chtbl.com/track/X/dts.podtrac.com/redirect.mp3/cdn.example.com/a.mp3",
                     "cdn.example.com/a.mp3", id="stacked"),
        pytest.param("https://op3.dev/e,pg=abc/https://cdn.example.com/a.mp3", "cdn.example.com/a.mp3",
                     id="op3-with-options"),
        pytest.param("https://cdn.example.com/dl.php?id=7#t=30", "cdn.example.com/dl.php?id=7", id="query-kept"),
        pytest.param("https://[::1/a.mp3", "[::1/a.mp3", id="broken-ipv6-kept-as-text"),
        pytest.param("", None, id="empty"),
        pytest.param(None, None, id="none"),
    ],
)
def test_tracking_free_url(url: str | None, expected: str | None) -> None:
    assert tracking_free_url(url) == expected


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        pytest.param(("https://cdn/a.mp3", "One", "d1"), ("https://cdn/a.mp3", "Two", "d2"), True,
                     id="enclosure-decides-over-title"),
        pytest.param(("https://chtbl.com/track/X/cdn/a.mp3", "", None), ("http://cdn/a.mp3", "", None), True,
                     id="tracking-prefix-and-scheme-ignored"),
        pytest.param(("https://cdn/a.mp3", "One", "d1"), ("https://cdn/b.mp3", "One", "d1"), False,
                     id="different-enclosures"),
        pytest.param((None, "One", "d1"), (None, "One", "d1"), True, id="title-and-date"),
        pytest.param((None, "One", "d1"), (None, "One", "d2"), False, id="same-title-other-date"),
        pytest.param((None, "", None, "post A"), (None, "", None, "post B"), False, id="description-last"),
        pytest.param(("https://cdn/a.mp3", "One", "d1"), (None, "One", "d1"), False, id="audio-vs-none"),
    ],
)
def test_content_key(a: tuple, b: tuple, same: bool) -> None:
    assert (content_key(*a) == content_key(*b)) is same


def test_derived_ids_are_short_stable_and_distinct() -> None:
    one, two = derived_id("guid", "audio cdn/1.mp3"), derived_id("guid", "audio cdn/2.mp3")
    assert one == derived_id("guid", "audio cdn/1.mp3") and one != two
    assert one.startswith("guid#") and len(one) == len("guid#") + 12
    assert len(derived_id("g" * 200, "audio x")) == 26  # too long: hashed like a long guid


# ------------------------------------------------------------- within a document
def _ids(*pairs: tuple[str, str]) -> list[str | None]:
    return assign_ids([Candidate(natural, key) for natural, key in pairs]).ids


def _d(natural: str, key: str) -> str:
    return derived_id(natural, key)


@pytest.mark.parametrize(
    ("items", "expected", "counts"),
    [
        pytest.param([("a", "k1"), ("b", "k2")], ["a", "b"], (0, 0, 0, 0), id="unique-ids-kept"),
        pytest.param([("g", "k1"), ("g", "k1")], ["g", None], (2, 1, 0, 1), id="same-content-one-episode"),
        pytest.param([("g", "k1"), ("g", "k2")], [_d("g", "k1"), _d("g", "k2")], (2, 1, 1, 0),
                     id="different-content-two-episodes"),
        pytest.param([("g", "k1"), ("g", "k2"), ("g", "k1")], [_d("g", "k1"), _d("g", "k2"), None], (3, 1, 1, 1),
                     id="mixed-group"),
        pytest.param([("g", "k2"), ("g", "k1")], [_d("g", "k2"), _d("g", "k1")], (2, 1, 1, 0),
                     id="order-free"),
        pytest.param([("g", "k1"), ("x", "k9"), ("g", "k2"), ("h", "k1"), ("h", "k1")],
                     [_d("g", "k1"), "x", _d("g", "k2"), "h", None], (4, 2, 1, 1), id="several-groups"),
    ],
)
def test_assign_ids(items: list[tuple[str, str]], expected: list[str | None], counts: tuple[int, int, int, int]) -> None:
    result = assign_ids([Candidate(n, k) for n, k in items])
    assert result.ids == expected
    assert (result.shared_items, result.shared_ids, result.split_ids, result.repeats) == counts
    for episode_id in filter(None, result.ids):
        choice = result.choices[episode_id]
        assert episode_id in (choice.natural, choice.derived)


def test_eight_items_stamped_with_one_guid_stay_eight_with_the_same_ids_every_time() -> None:
    items = [("platform-guid", f"audio cdn/{n}.mp3") for n in range(8)]
    first, again = _ids(*items), _ids(*reversed(items))
    assert len(set(first)) == 8 and None not in first
    assert set(first) == set(again), "ids depend on the item, not on its position"


@given(st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from(["k1", "k2", "k3"])), max_size=12))
def test_every_distinct_item_gets_exactly_one_distinct_id(items: list[tuple[str, str]]) -> None:
    ids = _ids(*items)
    kept = [i for i in ids if i is not None]
    assert len(kept) == len(set(kept)) == len(set(items))


# --------------------------------------------------------- against the store
def ep(episode_id: str, audio: str | None, title: str = "T", guid: str = "g") -> Episode:
    return Episode(id=episode_id, guid=guid, title=title, audio_url=audio, published=_DATE)


X = "https://cdn/x.mp3"
Y = "https://cdn/y.mp3"
KX, KY = content_key(X, "", None), content_key(Y, "", None)
GX, GY = derived_id("g", KX), derived_id("g", KY)


def _choices(*pairs: tuple[str, str]) -> dict[str, IdChoice]:
    return {episode_id: IdChoice(natural="g", derived=derived) for episode_id, derived in pairs}


@pytest.mark.parametrize(
    ("parsed", "choices", "stored", "stored_episodes", "expected", "loads"),
    [
        pytest.param([ep(GX, X), ep(GY, Y)], _choices((GX, GX), (GY, GY)), {}, [], [GX, GY], 0,
                     id="nothing-stored"),
        pytest.param([ep(GX, X), ep(GY, Y)], _choices((GX, GX), (GY, GY)), {"g": ep("g", X).content_hash}, [],
                     ["g", GY], 0, id="stored-before-guid-was-shared-hash-says-which"),
        pytest.param([ep(GX, X, "New title"), ep(GY, Y)], _choices((GX, GX), (GY, GY)), {"g": "older"},
                     [ep("g", X, "Old title")], ["g", GY], 1, id="stored-before-and-edited-since-read-to-tell"),
        pytest.param([ep(GX, X), ep(GY, Y)], _choices((GX, GX), (GY, GY)), {"g": "older"},
                     [ep("g", "https://cdn/z.mp3")], [GX, GY], 1, id="stored-under-guid-is-neither"),
        pytest.param([ep("g", Y)], _choices(("g", GY)), {"g": "x's hash", GY: "y's hash"}, [], [GY], 0,
                     id="group-dissolved-keeps-derived-id"),
        pytest.param([ep("g", X)], _choices(("g", GX)), {"g": ep("g", X).content_hash}, [], ["g"], 0,
                     id="unique-and-stored-as-guid"),
        pytest.param([ep(GX, X), ep(GY, Y)], _choices((GX, GX), (GY, GY)), {GX: "h", GY: "h", "g": "h"}, [],
                     [GX, GY], 0, id="derived-ids-stored"),
        pytest.param([ep(GX, X), ep(GY, Y)], _choices((GX, GX), (GY, GY)), {"g": "older"},
                     [ep("g", X)], ["g", GY], 1, id="only-one-item-takes-the-guid"),
        pytest.param([ep("https://cdn/x.mp3", X)], {}, {}, [], ["https://cdn/x.mp3"], 0, id="no-choice-no-change"),
    ],
)
def test_keep_stored_ids(parsed: list[Episode], choices: dict[str, IdChoice], stored: dict[str, str],
                         stored_episodes: list[Episode], expected: list[str], loads: int) -> None:
    calls: list[int] = []

    def load() -> list[Episode]:
        calls.append(1)
        return stored_episodes

    result = keep_stored_ids(parsed, choices, stored, load)
    assert [e.id for e in result] == expected
    assert len(calls) == loads
    assert [e.audio_url for e in result] == [e.audio_url for e in parsed], "only ids change"

    # The same document handed over in batches, split at every point, gives the same ids
    # (the held ones come at the end, each with its document position).
    for split in range(len(parsed) + 1):
        keeper = StoredIdKeeper(choices, stored, [e.id for e in parsed], lambda _ids: stored_episodes)
        kept = keeper.keep(parsed[:split]) + keeper.keep(parsed[split:])
        held = keeper.settle()
        positions = [p for p in range(len(parsed)) if p not in {p for p, _ in held}]
        in_order = sorted([*zip(positions, kept, strict=True), *held], key=lambda pair: pair[0])
        assert [e.id for _, e in in_order] == expected, f"split at {split}"
