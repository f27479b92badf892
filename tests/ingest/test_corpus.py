"""The team's corpus of real feeds (../shared/corpus, next to the repository).

Every file must parse into a ParsedFeed or raise a typed ParseError -- nothing else, no
hang. Where MANIFEST.tsv (at the corpus root, naming files as ``feeds/<name>``) says
how many items a feed has, the episode count must match it, less duplicate guids and
the documented exceptions below. Durations and Podcasting 2.0 tags the manifest
mentions must come through. The whole corpus (124 files, 24 MB) takes about 8 s.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from earshot.errors import ParseError
from earshot.ingest.parser import parse_feed

CORPUS_ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
FEEDS_DIR = CORPUS_ROOT / "feeds"
MANIFEST = CORPUS_ROOT / "MANIFEST.tsv"

# Files that are not usable feeds, and the error kind each must raise.
EXPECTED_ERRORS = {
    "argl-podcast-feeds__empty-root.xml": "not_a_feed",  # <rss></rss>
    "castero__broken_channel_empty.xml": "not_a_feed",  # <rss><channel/></rss>
    "castero__broken_no_channel.xml": "not_a_feed",  # <rss><notchannel/></rss>
    "castero__broken_rss_empty.xml": "not_a_feed",  # <rss/>
    # Three well-formed items, but under a <faketag> root: not RSS, RDF or Atom, which is
    # this fixture's intent in castero ("broken_is_rss"); the manifest still counts them.
    "castero__broken_is_rss.xml": "not_a_feed",
    "podcastparser__empty.rss.xml": "not_a_feed",  # <rss><channel/></rss>, no declaration
    "podcastparser__redirect_new_location.rss.xml": "not_a_feed",  # <rss><redirect> only
    # An undeclared podcast: prefix and nothing but a channel-level podcast:funding.
    "podcastparser__podcast_funding.rss.xml": "malformed",
}

# Where the episode count legitimately differs from item_count minus duplicate guids.
COUNT_ADJUSTMENTS = {
    # No guids at all; 4 items repeat an earlier item's enclosure URL, their id.
    "argl-podcast-feeds__rlm.xml": -4,
    # One item holds only a pubDate and an empty itunes:duration: nothing to identify,
    # show or play, so it is skipped with a warning.
    "argl-podcast-feeds__vodcast.xml": -1,
    # No guids; two items both enclose usBlues.mp3.
    "pickup__0.92.xml": -1,
    # The only item is an <enclosure> without a url.
    "podcastparser__no_url.rss.xml": -1,
    # Both items are empty elements.
    "pyPodcastParser__missing_info_podcast.rss.xml": -2,
}


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


@pytest.mark.corpus
@pytest.mark.parametrize(("path", "row"), _corpus_params())
def test_corpus_feed(path: Path, row: ManifestRow | None) -> None:
    name = path.name
    try:
        parsed = parse_feed(path.read_bytes(), url=f"https://corpus.example/{name}")
    except ParseError as exc:
        assert exc.kind == EXPECTED_ERRORS.get(name), f"unexpected {exc.kind}: {exc}"
        return
    assert name not in EXPECTED_ERRORS, f"expected {EXPECTED_ERRORS[name]}, got a ParsedFeed"
    if row is None:
        return  # not in the manifest: parsing without an untyped error is all we know

    broken = [w for w in parsed.warnings if w.startswith("not well-formed XML")]
    assert bool(broken) != row.is_well_formed, parsed.warnings

    if row.is_well_formed:
        expected = row.item_count - row.count("duplicate guids") + COUNT_ADJUSTMENTS.get(name, 0)
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
