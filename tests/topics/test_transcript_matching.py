"""Matching inside transcripts: the ``transcript:`` field, the per-topic switch, the moment
named in the reason (each format matched at the right second), a phrase across cues."""

from __future__ import annotations

from pathlib import Path

import pytest

from earshot.errors import QueryError
from earshot.models import Cue, Episode, Topic
from earshot.topics.matching import EpisodeTranscript, compile_topic, match_episodes, uses_transcripts
from earshot.topics.query import TRANSCRIPT_DEFAULT_FIELDS, Document, parse_query
from earshot.transcripts.cues import parse_transcript

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "transcripts"


def _doc(cues: list[Cue], title: str = "Weekly markets") -> Document:
    return Document(title=title, description="Rates and oil.", transcript=cues)


# Each format's golden fixture says "MLPs" at a known second (12:34 = 754 s; the word-by-word
# JSON at 754.1 s, shown as 12:34); plain text has no times, so no moment.
@pytest.mark.parametrize(("fixture", "media_type", "at_s", "reason"), [
    ("podcasting20.json", "application/json", 754.1,
     "MLPs in transcript at 12:34 — 'Welcome back. This is why MLPs cut distributions. Master…'"),
    ("captions.vtt", "text/vtt", 750.0, "MLPs in transcript at 12:30 — '…Minute. Today: why MLPs cut distributions & what…'"),
    ("transcript.html", "text/html", 754.0, "MLPs in transcript at 12:34 — '…the pipeline. That is why MLPs cut distributions. No new…'"),
    ("windows-1252.srt", "application/x-subrip", 1.0, "MLPs in transcript at 0:01 — 'Café talk: “MLPs” and their yield'"),
    ("utf16.vtt", "text/vtt", 1.0, "MLPs in transcript at 0:01 — 'Über MLPs: “midstream”'"),
], ids=lambda v: v if isinstance(v, str) and "." in v and " " not in v else "")
def test_each_format_matches_at_the_right_second(fixture: str, media_type: str, at_s: float, reason: str) -> None:
    cues = list(parse_transcript((FIXTURES / fixture).read_bytes(), media_type=media_type).cues)
    result = parse_query("transcript:MLP").evaluate(_doc(cues))
    assert result.matched and result.reason == reason
    assert result.moment is not None and result.moment.at_s == at_s


def test_a_transcript_without_times_matches_without_a_moment() -> None:
    cues = list(parse_transcript((FIXTURES / "plain.txt").read_bytes(), media_type="text/plain").cues)
    result = parse_query('transcript:"master limited partnerships"').evaluate(_doc(cues))
    assert result.reason == ("\"Master limited partnerships\" in transcript — "
                             "'…back to Midstream Minute. Master limited partnerships pay out most of their…'")
    assert result.moment is None


@pytest.mark.parametrize(("cues", "at_s"), [
    ([Cue(10.0, 12.0, None, "and that is why master"), Cue(12.0, 14.0, None, "limited partnerships pay")], 10.0),
    ([Cue(1.0, None, None, "master"), Cue(1.4, None, None, "limited"), Cue(1.9, None, None, "partnerships")], 1.0),
    ([Cue(5.0, None, None, "the MASTER"), Cue(None, None, None, "limited partnership's units")], 5.0),
], ids=["two-cues", "word-by-word", "second-cue-without-time"])
def test_a_phrase_spans_cues(cues: list[Cue], at_s: float) -> None:
    result = parse_query('transcript:"master limited partnership"').evaluate(_doc(cues))
    assert result.matched and result.moment is not None and result.moment.at_s == at_s


def test_cue_boundaries_never_glue_words() -> None:
    # "pipe" ending one cue and "line" starting the next are two words, not "pipeline".
    cues = [Cue(1.0, None, None, "a pipe"), Cue(2.0, None, None, "line of credit")]
    assert parse_query("transcript:pipeline").evaluate(_doc(cues)).matched is False
    assert parse_query('transcript:"pipe line"').evaluate(_doc(cues)).moment.at_s == 1.0  # type: ignore[union-attr]


def test_unfielded_terms_look_in_transcripts_only_when_the_topic_says_so() -> None:
    cues = [Cue(754.0, None, None, "why MLPs cut distributions")]
    doc = _doc(cues)
    off = compile_topic(Topic(slug="t", name="T", query="MLP"))
    on = compile_topic(Topic(slug="t", name="T", query="MLP", search_transcripts=True))
    assert not off.evaluate(doc).matched and not uses_transcripts(off)
    assert on.evaluate(doc).reason == "MLPs in transcript at 12:34 — 'why MLPs cut distributions'"
    assert uses_transcripts(on) and uses_transcripts(parse_query("title:x OR transcript:y"))
    # title and transcript together: one hit naming both, the moment kept
    both = on.evaluate(_doc(cues, title="MLPs rally"))
    assert both.reason == "MLPs in title and transcript at 12:34 — 'why MLPs cut distributions'"
    assert both.moment is not None and not both.in_transcript_only
    assert on.evaluate(doc).in_transcript_only


def test_negation_and_fields_work_on_transcripts() -> None:
    doc = _doc([Cue(3.0, None, None, "the pony MLP fan meetup")])
    assert not parse_query("transcript:MLP -transcript:pony").evaluate(doc).matched
    assert parse_query("transcript:(MLP pony)", default_fields=TRANSCRIPT_DEFAULT_FIELDS).evaluate(doc).matched
    with pytest.raises(QueryError, match="unknown field 'transcripts'"):
        parse_query("transcripts:MLP")


def test_match_episodes_snapshots_the_moment_and_the_transcript_link() -> None:
    episodes = [Episode(id="a", title="Markets", audio_url="https://m.example/a.mp3"),
                Episode(id="b", title="MLPs in the title only")]
    transcripts = {"a": EpisodeTranscript("https://m.example/a.vtt", [Cue(754.4, None, None, "why MLPs cut")]),
                   "b": EpisodeTranscript("https://m.example/b.vtt", [Cue(9.0, None, None, "nothing here")])}
    query = compile_topic(Topic(slug="t", name="T", query="MLP", search_transcripts=True))
    a, b = match_episodes(query, episodes, feed_id="f", podcast="Pod", transcripts=transcripts)
    assert (a.moment.start_seconds, a.moment.text, a.transcript_url) == (754, "why MLPs cut", "https://m.example/a.vtt")  # type: ignore[union-attr]
    assert (b.moment, b.transcript_url, b.reason) == (None, None, "MLPs in title")
