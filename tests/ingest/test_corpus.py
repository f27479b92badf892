"""The team's corpus of real feeds (../shared/corpus, next to the repository).

Every file must parse into a ParsedFeed or raise a typed ParseError -- nothing else, no
hang. Where MANIFEST.tsv (at the corpus root, naming files as ``feeds/<name>``) says
how many items a feed has, the episode count must match it, less the documented
exceptions below (an item sharing a guid is an episode of its own unless it repeats an
earlier item's content: ``earshot.identity``). Every file keeps at least 90 % of the
items with audio that feedparser sees. Durations and Podcasting 2.0 tags the manifest
mentions must come through. The whole corpus (124 files, 24 MB) takes about 8 s.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import feedparser
import pytest

from earshot.errors import ParseError
from earshot.ingest.parser import parse_feed

CORPUS_ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
FEEDS_DIR = CORPUS_ROOT / "feeds"
MANIFEST = CORPUS_ROOT / "MANIFEST.tsv"

# Files that are not usable feeds, and the error kind each must raise.
EXPECTED_ERRORS = {
    "argl-podcast-feeds__empty-root.xml": "not_a_feed",  # <rss></rss>
    "castero__broken_no_channel.xml": "not_a_feed",  # <rss><notchannel/></rss>
    "castero__broken_rss_empty.xml": "not_a_feed",  # <rss/>
    # Three well-formed items, but under a <faketag> root: not RSS, RDF or Atom, which is
    # this fixture's intent in castero ("broken_is_rss"); the manifest still counts them.
    "castero__broken_is_rss.xml": "not_a_feed",
    "podcastparser__redirect_new_location.rss.xml": "not_a_feed",  # <rss><redirect> only
}
# Channels with no items yet: feeds with 0 episodes (a new show publishes its channel first).
NO_ITEMS_YET = {
    "castero__broken_channel_empty.xml",  # <rss><channel/></rss>
    "podcastparser__empty.rss.xml",  # <rss><channel/></rss>, no declaration
    # An undeclared podcast: prefix and nothing but a channel-level podcast:funding.
    "podcastparser__podcast_funding.rss.xml",
}

# Where the episode count legitimately differs from the manifest's item count.
COUNT_ADJUSTMENTS = {
    # No guids at all; 4 items repeat an earlier item's enclosure URL, which is both their
    # id and their content: the same file listed under another title.
    "argl-podcast-feeds__rlm.xml": -4,
    # One item holds only a pubDate and an empty itunes:duration: nothing to identify,
    # show or play, so it is skipped with a warning. Of the 9 guids that two items share,
    # 8 are distinct episodes (kept apart by enclosure); "Woodsongs 515" is listed twice
    # word for word (same guid, title, date and enclosure), so one is a repeat.
    "argl-podcast-feeds__vodcast.xml": -2,
    # No guids; two items both enclose usBlues.mp3.
    "pickup__0.92.xml": -1,
    # The only item is an <enclosure> without a url.
    "podcastparser__no_url.rss.xml": -1,
    # Both items are empty elements.
    "pyPodcastParser__missing_info_podcast.rss.xml": -2,
    # "Suspense - Catch Me If You Can" twice: same guid, title, date and enclosure.
    "radiofeed__rss_bad_pub_date.xml": -1,
}

# Files keeping fewer than 90 % of feedparser's items with audio, and why.
AUDIO_EXCEPTIONS = {
    # A transcript-parsing fixture: one episode listed 4 times (same guid, title, date and
    # enclosure; only the podcast:transcript tags differ). One episode, by the identity rule.
    "pyPodcastParser__episode_parsing.rss.xml",
}
MIN_AUDIO_SHARE = 0.9


@dataclass(frozen=True)
class ManifestRow:
    name: str
    item_count: int
    notes: str

    def count(self, label: str) -> int:
        """The N of a "<label> xN" note, 0 when absent."""
        match = re.search(rf"{re.escape(label)} x(\d+)", self.notes)
        return int(match.group(1)) if match else 0

    @property
    def is_well_formed(self) -> bool:
        return "NOT well-formed XML" not in self.notes


def _corpus_params() -> list[object]:
    if not FEEDS_DIR.is_dir() or not MANIFEST.is_file():
        reason = f"team feed corpus not found at {CORPUS_ROOT} (../shared beside the repository)"
        return [pytest.param(None, None, marks=pytest.mark.skip(reason=reason), id="corpus-absent")]
    with MANIFEST.open(encoding="utf-8", newline="") as handle:
        rows = [ManifestRow(Path(r["file"]).name, int(r["item_count"]), r["notes"])
                for r in csv.DictReader(handle, delimiter="\t")]
    by_name = {row.name: row for row in rows}
    return [
        pytest.param(path, by_name.get(path.name), id=path.name)
        for path in sorted(FEEDS_DIR.iterdir())
        if path.is_file()
    ]


_MEDIA_FILE = re.compile(r"\.(?:mp3|m4a|m4b|aac|ogg|oga|opus|wav|flac|mp4|m4v|mov|webm)$", re.IGNORECASE)


def _is_media(href: str, mime: str, medium: str = "") -> bool:
    return bool(href) and (mime.lower().startswith(("audio/", "video/")) or medium in ("audio", "video")
                           or bool(_MEDIA_FILE.search(href.split("?", 1)[0])))


def _has_audio(entry: Any) -> bool:
    return (any(_is_media(e.get("href") or "", e.get("type") or "") for e in entry.get("enclosures") or ())
            or any(_is_media(m.get("url") or "", m.get("type") or "", m.get("medium") or "")
                   for m in entry.get("media_content") or ()))


def feedparser_audio_items(body: bytes) -> int:
    """How many items feedparser itself sees with an audio or video enclosure or media:content."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = feedparser.parse(io.BytesIO(body), sanitize_html=False)
    return sum(_has_audio(entry) for entry in result.get("entries") or ())


@pytest.mark.corpus
@pytest.mark.parametrize(("path", "row"), _corpus_params())
def test_corpus_feed(path: Path, row: ManifestRow | None) -> None:
    name = path.name
    body = path.read_bytes()
    try:
        parsed = parse_feed(body, url=f"https://corpus.example/{name}")
    except ParseError as exc:
        assert exc.kind == EXPECTED_ERRORS.get(name), f"unexpected {exc.kind}: {exc}"
        return
    assert name not in EXPECTED_ERRORS, f"expected {EXPECTED_ERRORS[name]}, got a ParsedFeed"
    if name in NO_ITEMS_YET:
        assert parsed.episodes == [], "a channel with no items is a feed with no episodes yet"

    # Never fewer than 90 % of the items with audio that feedparser itself sees.
    seen_audio = feedparser_audio_items(body)
    kept_audio = sum(e.audio_url is not None for e in parsed.episodes)
    if name not in AUDIO_EXCEPTIONS:
        assert kept_audio >= MIN_AUDIO_SHARE * seen_audio, (kept_audio, seen_audio, parsed.warnings)
    else:
        assert kept_audio < MIN_AUDIO_SHARE * seen_audio, "no longer an exception: drop it"
    if row is None:
        return  # not in the manifest: parsing without an untyped error is all we know

    broken = [w for w in parsed.warnings if w.startswith("not well-formed XML")]
    assert bool(broken) != row.is_well_formed, parsed.warnings

    if row.is_well_formed:
        expected = row.item_count + COUNT_ADJUSTMENTS.get(name, 0)
        assert len(parsed.episodes) == expected, parsed.warnings

    # Every itunes:duration is parsed except the ones the manifest calls odd or empty
    # (and those of items dropped as duplicates or empty).
    dropped = row.item_count - len(parsed.episodes)
    with_duration = sum(e.duration_seconds is not None for e in parsed.episodes)
    odd = row.count("odd/empty durations")
    assert with_duration >= row.count("itunes:duration") - odd - dropped

    transcripts = sum(len(e.transcripts) for e in parsed.episodes)
    if row.is_well_formed:
        # Well-formed documents keep every podcast:transcript, several per item.
        assert transcripts == row.count("podcast:transcript")
    elif row.count("podcast:transcript"):
        # Broken ones fall back to feedparser's single transcript per item.
        assert transcripts >= 1
    if "podcast:chapters" in row.notes:
        assert any(e.chapters for e in parsed.episodes)


@pytest.mark.corpus
def test_vodcast_keeps_the_distinct_episodes_that_share_a_guid() -> None:
    """The corpus case behind the identity rule: "Woodsongs Vodcasts" gives 9 guids to two
    items each. Before the rule it kept 277 episodes; now 285 of its 287 items."""
    path = FEEDS_DIR / "argl-podcast-feeds__vodcast.xml"
    if not path.is_file():
        pytest.skip(f"team feed corpus not found at {CORPUS_ROOT}")
    body = path.read_bytes()
    first, second = (parse_feed(body, url="https://corpus.example/vodcast.xml") for _ in range(2))
    titles = {e.title for e in first.episodes}
    assert len(first.episodes) == 285
    assert {"Woodsongs 782: Bela Fleck and Abigail Washburn", "Woodsongs 781: Celebration of the Music of Appalachia",
            "Woodsongs 736: Tim O'Brien & Darrell Scott and Ron Block with Sierra Hull",
            "Woodsongs 735: The Ooks of Hazzard and The Bankesters"} <= titles, "both items of a shared guid are kept"
    assert [e.id for e in first.episodes] == [e.id for e in second.episodes], "the same ids on every parse"
    assert ("18 items share 9 guids (or enclosure or link where there is no guid): kept as 17 episodes, "
            "told apart by enclosure, else title and date") in first.warnings
