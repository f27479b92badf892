"""Transcript parsing: golden fixtures per format (each ``X.ext`` beside ``X.expected.json``
holding the type it is served as and the cues, warnings or typed error expected), then
table-driven hostile inputs that are easier to build than to store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from earshot.errors import TranscriptMalformed, TranscriptUnreadable
from earshot.models import Cue, Transcript
from earshot.transcripts.choice import choose
from earshot.transcripts.cues import MAX_CUE_CHARS, MAX_CUES, parse_timestamp, parse_transcript, sniff_format

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "transcripts"
GOLDEN = sorted(p for p in FIXTURES.iterdir() if not p.name.endswith(".expected.json"))


@pytest.mark.parametrize("fixture", GOLDEN, ids=lambda p: p.name)
def test_golden_transcripts(fixture: Path) -> None:
    expected = json.loads(fixture.with_name(fixture.name.rsplit(".", 1)[0] + ".expected.json").read_text())
    if "error" in expected:
        with pytest.raises((TranscriptMalformed, TranscriptUnreadable)) as caught:
            parse_transcript(fixture.read_bytes(), media_type=expected["media_type"])
        assert caught.value.kind == expected["error"]
        return
    parsed = parse_transcript(fixture.read_bytes(), media_type=expected["media_type"])
    assert parsed.format == expected["format"]
    assert [list(c) for c in parsed.cues] == expected["cues"]
    assert list(parsed.warnings) == expected["warnings"]


def test_every_format_has_a_golden_fixture() -> None:
    formats = {json.loads(p.read_text()).get("format") for p in FIXTURES.glob("*.expected.json")}
    assert {"json", "vtt", "srt", "html", "text"} <= formats


@pytest.mark.parametrize(("text", "seconds"), [
    ("00:01.000", 1.0), ("01:02.5", 62.5), ("1:02:03.456", 3723.456), ("00:00:01,000", 1.0),  # SRT comma
    ("123:00:00.000", 442800.0), ("12:34", 754.0), ("00:00:07", 7.0), (" 00:05.250 ", 5.25),
    ("00:60.000", None), ("1:2:3", None), ("", None), ("-00:01.000", None), ("00:01.0000", None),
], ids=repr)
def test_timestamps_in_every_legal_form(text: str, seconds: float | None) -> None:
    assert parse_timestamp(text) == seconds


# ------------------------------------------------------------------ hostile, built here
def _segments(n: int) -> bytes:
    return json.dumps({"segments": [{"startTime": i, "body": f"w{i}"} for i in range(n)]}).encode()


@pytest.mark.parametrize(("body", "media_type", "kind"), [
    (b"[" * 200_000 + b"]" * 200_000, "application/json", "transcript_malformed"),  # nesting bomb
    (b"", "text/vtt", "transcript_malformed"),
    (b"WEBVTT\n\n", "text/vtt", "transcript_malformed"),  # a header and no cue
    (b'{"segments": "not a list"}', "application/json", "transcript_malformed"),
    (b'{"segments": [{"startTime": "soon", "body": "x"}, {"startTime": 1e308, "body": "y"}]}',
     "application/json", "transcript_malformed"),  # no usable time anywhere
    (b"\x00\x01\x02\x03" * 5000, "text/plain", "transcript_unreadable"),
    (b"\xff\xfe" + b"\x00\xd8" * 10, "text/vtt", "transcript_unreadable"),  # a BOM, then broken UTF-16
    (b"<html><body><script>MLPs</script><style>p{}</style></body></html>", "text/html", "transcript_malformed"),
], ids=["json-nesting-bomb", "empty", "vtt-header-only", "segments-not-a-list", "no-usable-time",
        "control-bytes", "broken-utf16", "html-scripts-only"])
def test_hostile_transcripts_end_as_typed_errors(body: bytes, media_type: str, kind: str) -> None:
    with pytest.raises((TranscriptMalformed, TranscriptUnreadable)) as caught:
        parse_transcript(body, media_type=media_type)
    assert caught.value.kind == kind


def test_cue_count_and_cue_length_are_bounded() -> None:
    parsed = parse_transcript(_segments(MAX_CUES + 5), media_type="application/json")
    assert len(parsed.cues) == MAX_CUES
    assert any("ignored" in w for w in parsed.warnings)
    long = parse_transcript(b"WEBVTT\n\n00:01.000 --> 00:02.000\n" + b"word " * 5000, media_type="text/vtt")
    assert len(long.cues[0].text) <= MAX_CUE_CHARS and long.cues[0].text.endswith("word")


def test_utf16_without_a_bom_and_a_charset_from_the_header() -> None:
    body = "WEBVTT\n\n00:01.000 --> 00:02.000\nMLPs\n".encode("utf-16-le")
    parsed = parse_transcript(body, media_type="text/vtt")
    assert parsed.cues == (Cue(1.0, 2.0, None, "MLPs"),) and parsed.warnings
    latin = parse_transcript("Caf\u00e9 MLPs".encode("latin-1"), content_type="text/plain; charset=ISO-8859-1")
    assert latin.cues[0].text == "Caf\u00e9 MLPs" and latin.warnings == ()


@pytest.mark.parametrize(("text", "declared", "expected"), [
    ("WEBVTT\n\n00:01.000 --> 00:02.000\nx", "text", "vtt"),
    ('{"segments": []}', "html", "json"),
    ("1\n00:00:01,000 --> 00:00:02,000\nx", None, "srt"),
    ("00:00:01,000 --> 00:00:02,000\nx", None, "srt"),  # no index line: still timed text
    ("<p>x</p>", "text", "text"),  # a declared type beats a weak signal
    ("<cite>A:</cite><p>x</p>", None, "html"),
    ("just words", None, "text"),
], ids=repr)
def test_sniffing(text: str, declared: str | None, expected: str) -> None:
    assert sniff_format(text, declared) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(("transcripts", "chosen"), [
    ([("https://a/t.html", "text/html"), ("https://a/t.json", "application/json"), ("https://a/t.vtt", "text/vtt")],
     ["https://a/t.json", "https://a/t.vtt", "https://a/t.html"]),
    ([("https://a/t", None), ("https://a/t.srt", "application/x-subrip")], ["https://a/t.srt", "https://a/t"]),
    ([("ftp://a/t.json", "application/json"), ("javascript:alert(1)", "text/vtt"), ("/relative.vtt", "text/vtt"),
      ("https://pod.example/t.vtt", "text/vtt"), ("http://t.invalid./t.srt", None)],  # reserved: never resolved
     []),
    ([("https://a/t.vtt", "text/vtt"), ("https://a/t.vtt", "text/vtt")], ["https://a/t.vtt"]),
    ([(f"https://a/{i}.txt", "text/plain") for i in range(6)], ["https://a/0.txt", "https://a/1.txt", "https://a/2.txt"]),
], ids=["richest-first", "unknown-type-last", "only-http", "listed-twice", "at-most-three"])
def test_choice_of_transcript(transcripts: list[tuple[str, str | None]], chosen: list[str]) -> None:
    assert [t.url for t in choose([Transcript(url=u, type=t) for u, t in transcripts])] == chosen
