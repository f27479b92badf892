"""Table-driven tests for earshot.textutil (the doctests there are the short spec)."""

from __future__ import annotations

import re
import time
import unicodedata
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from earshot.textutil import clean_text, neutralize, parse_duration, strip_html, to_utc

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("45", 45),
        (" 45 ", 45),
        ("\t45\n", 45),
        ("0", 0),
        ("1234.0", 1234),
        ("3184.9", 3184),
        ("05:30", 330),
        ("75:30", 4530),
        ("1:02:03", 3723),
        ("01:02:03", 3723),
        ("1:02:03.5", 3723),
        ("00:04:60", 300),
        ("100:00:00", 360000),
        ("1h 2m", 3720),
        ("1h2m3s", 3723),
        ("1H 30M", 5400),
        ("90 min", 5400),
        ("45s", 45),
        ("45 sec", 45),
        ("", None),
        ("   ", None),
        ("-5", None),
        ("-1:00", None),
        ("1::03", None),
        (":30", None),
        ("1:2:3:4", None),
        ("1.5.6", None),
        ("abc", None),
        ("ten minutes", None),
        ("12 minutes", None),
        ("٤٥", None),  # Arabic-Indic digits: not what iTunes means by a number
        (None, None),
        (45, None),  # feedparser hands over strings; anything else is not trusted
    ],
    ids=lambda v: repr(v),
)
def test_parse_duration(value: object, seconds: int | None) -> None:
    assert parse_duration(value) == seconds  # type: ignore[arg-type]


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("Wed, 01 May 2024 10:00:00 GMT", _utc(2024, 5, 1, 10), id="rfc822-gmt"),
        pytest.param("Wed, 01 May 2024 10:00:00 +0200", _utc(2024, 5, 1, 8), id="rfc822-offset"),
        pytest.param("01 May 2024 10:00:00 EST", _utc(2024, 5, 1, 15), id="rfc822-no-weekday"),
        pytest.param("2024-05-01T10:00:00Z", _utc(2024, 5, 1, 10), id="iso-z"),
        pytest.param("2024-05-01T10:00:00-05:00", _utc(2024, 5, 1, 15), id="iso-offset"),
        pytest.param("2024-05-01", _utc(2024, 5, 1), id="iso-date-only"),
        pytest.param(time.struct_time((2024, 5, 1, 10, 0, 0, 2, 122, 0)), _utc(2024, 5, 1, 10),
                     id="struct-time"),
        pytest.param(datetime(2024, 5, 1, 10), _utc(2024, 5, 1, 10), id="naive-is-utc"),
        pytest.param(datetime(2024, 5, 1, 12, tzinfo=timezone(timedelta(hours=2))),
                     _utc(2024, 5, 1, 10), id="aware"),
        pytest.param("2024-05-03T11:59:00Z", _utc(2024, 5, 3, 11, 59), id="under-two-days-ahead"),
        pytest.param("1990-01-01T00:00:00Z", _utc(1990, 1, 1), id="earliest"),
        pytest.param("2024-05-03T12:01:00Z", None, id="over-two-days-ahead"),
        pytest.param("Thu, 01 Jan 1970 00:00:00 GMT", None, id="epoch"),
        pytest.param("1989-12-31T23:59:59Z", None, id="before-1990"),
        pytest.param("Sat, 07 Mar 2009 24:28:20 CST", None, id="hour-24"),
        pytest.param(time.struct_time((2024, 5, 1, 10, 0, 61, 2, 122, 0)), None,
                     id="struct-time-second-61"),
        pytest.param("0001-01-01T00:00:00+01:00", None, id="offset-before-year-1"),
        pytest.param("9999-12-31T23:59:59-01:00", None, id="offset-after-year-9999"),
        pytest.param("next Tuesday", None, id="words"),
        pytest.param("", None, id="empty"),
        pytest.param(None, None, id="none"),
    ],
)
def test_to_utc(value: object, expected: datetime | None) -> None:
    result = to_utc(value, now=NOW)  # type: ignore[arg-type]
    assert result == expected
    if result is not None:
        assert result.tzinfo is UTC


@pytest.mark.parametrize(
    ("html", "text"),
    [
        pytest.param("plain text", "plain text", id="plain"),
        pytest.param("Tom &amp; Jerry", "Tom & Jerry", id="entity"),
        pytest.param("a&nbsp;b&#160;c&#xA0;d", "a b c d", id="nbsp-forms"),
        pytest.param("&eacute;&#233;&copy;&hellip;", "éé©…", id="named-and-numeric"),
        pytest.param("AT&T and a & b", "AT&T and a & b", id="bare-ampersands"),
        pytest.param("5 < 6 > 4", "5 < 6 > 4", id="bare-angle-brackets"),
        pytest.param("<p>one</p><p>two</p>", "one\ntwo", id="paragraphs"),
        pytest.param("one<br>two<br/>three<br />four", "one\ntwo\nthree\nfour", id="line-breaks"),
        pytest.param("<ul><li>a</li><li>b</li></ul>", "a\nb", id="list"),
        pytest.param("<h2>Title</h2>Body", "Title\nBody", id="heading"),
        pytest.param("<tr><td>1</td><td>2</td></tr>", "1 2", id="table-cells"),
        pytest.param("a<b>b</b>c", "abc", id="inline-tags-join"),
        pytest.param("x<script>alert('<p>')</script>y", "xy", id="script"),
        pytest.param("x<style>p { color: red }</style>y", "xy", id="style"),
        pytest.param("x<!-- hidden -->y", "xy", id="comment"),
        pytest.param("  lots \n\n of\t\tspace  ", "lots of space", id="whitespace"),
        pytest.param("<p> </p><p>\n</p><p>kept</p>", "kept", id="blank-blocks"),
        pytest.param("<p>unclosed <b>bold", "unclosed bold", id="unclosed"),
        pytest.param("", "", id="empty"),
        pytest.param(None, "", id="none"),
    ],
)
def test_strip_html(html: str | None, text: str) -> None:
    assert strip_html(html) == text


@pytest.mark.parametrize(
    ("value", "cleaned"),
    [
        pytest.param("Episode 1", "Episode 1", id="clean"),
        pytest.param("  padded  ", "padded", id="padded"),
        pytest.param("two\r\nlines", "two lines", id="crlf"),
        pytest.param("tab\there", "tab here", id="tab"),
        pytest.param("a\u00a0b\u2028c", "a b c", id="unicode-spaces"),
        pytest.param("nul\x00and\x7fdel", "nulanddel", id="control-chars"),
        pytest.param("c1\x85next", "c1 next", id="nel-is-whitespace"),
        pytest.param("Cafe\u0301", "Café", id="nfc"),
        pytest.param("👩\u200d💻 ok", "👩\u200d💻 ok", id="zwj-kept"),
        pytest.param("", "", id="empty"),
        pytest.param(None, "", id="none"),
    ],
)
def test_clean_text(value: str | None, cleaned: str) -> None:
    assert clean_text(value) == cleaned


def _clean_text_in_full(value: str) -> str:
    """clean_text's general steps, without its shortcut for printable ASCII."""
    text = " ".join(unicodedata.normalize("NFC", value).split())
    return " ".join(neutralize(re.sub("[\x00-\x1f\x7f-\x9f]", "", text)).split())


@given(st.text(alphabet=" a~") | st.text(alphabet=" \t\n\x00\x7fa~\u00e9\u200b") | st.text())
def test_clean_text_takes_the_same_steps_for_every_text(text: str) -> None:
    # printable ASCII (most titles) skips NFC and the control and invisible-character
    # passes, which cannot change it
    assert clean_text(text) == _clean_text_in_full(text)


@given(st.text())
def test_helpers_never_raise_on_any_text(text: str) -> None:
    # Feeds are hostile input: every helper returns a value for every string.
    assert isinstance(strip_html(text), str)
    assert isinstance(clean_text(text), str)
    assert parse_duration(text) is None or parse_duration(text) >= 0
    to_utc(text, now=NOW)
