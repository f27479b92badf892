"""A generated RSS feed of any length whose guids repeat far apart, for the tests of
episodes handed over in batches (``parse_in_batches``, the refresh)."""

from __future__ import annotations

TOPIC_WORD = "pipeline"  # in the title of every 100th item


def generated_feed(items: int, *, description: str = "d") -> bytes:
    """Items 0..items-1. Item 3's guid is shared with items 40 and 90 (other audio: three
    episodes), item 5 is listed again as item 60 (one episode), items 7 and 70 have
    neither guid nor title (ids from their audio): ``items - 1`` episodes from 91 items."""
    def item(n: int) -> str:
        guid = {40: 3, 90: 3, 60: 5}.get(n, n)
        same = 5 if n == 60 else n
        words = f"The {TOPIC_WORD} episode" if same % 100 == 0 else "Episode"
        title = "" if n in (7, 70) else f"<title>{words} {same}</title>"
        guid_tag = "" if n in (7, 70) else f"<guid isPermaLink='false'>g-{guid}</guid>"
        return (f"<item>{title}{guid_tag}<pubDate>Mon, 0{1 + same % 9} Jan 2024 10:00:00 GMT</pubDate>"
                f"<description>&lt;p&gt;Notes {same}&lt;/p&gt;</description>"
                f"<enclosure url='https://cdn.example/{same}.mp3' type='audio/mpeg' length='1'/></item>")
    return ("<?xml version='1.0' encoding='UTF-8'?><rss version='2.0'><channel><title>Generated</title>"
            f"<description>{description}</description>"
            + "".join(item(n) for n in range(items)) + "</channel></rss>").encode()
