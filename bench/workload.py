"""The benchmark workload: N feeds written to a folder, plus a manifest the feed server reads.

Feeds are the real corpus files in ``../shared/corpus/feeds/`` (when present) and
generated RSS 2.0 podcast feeds whose sizes follow a log-normal spread (median ~80 KB,
a few KB up to several MB; the largest carry 1,000+ items). Everything is seeded, so two
runs with the same ``--feeds`` and ``--seed`` serve byte-identical bodies.

Each feed belongs to one second-cycle group (the issue's mix):

- ``not_modified`` (70 %): validators on both cycles; the second answers 304 to them;
- ``no_validators`` (20 %): the same body again, never any ETag / Last-Modified;
- ``new_episodes`` (10 %): the second cycle serves a new body with 1-3 new items.

Each feed also lives on one *host*: a distinct loopback address ``127.0.0.N`` that the
feed server listens on, so per-host politeness limits meet real distinct peers. The
spread follows the feeds of the corpus itself (their ``atom:link rel="self"`` /
``itunes:new-feed-url`` addresses: 49 distinct feed URLs on 40 hosts; the biggest host,
a feed-proxy platform, serves 7 of them = 14 %, the next three 2 each = 4 %, and 36 hosts
serve a single feed): a few big hosting platforms (``HOST_SHARES``: 14 %, 6 %, 4 %, 4 %,
4 %) and a long tail over every other address of 127.0.0.0/24 (1-3 feeds each at 1,000
feeds). See :func:`assign_hosts`.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

GROUP_SHARES = (("not_modified", 0.70), ("no_validators", 0.20), ("new_episodes", 0.10))
MEDIAN_FEED_BYTES = 80_000
SIZE_SIGMA = 1.2
MIN_FEED_BYTES = 3_000
MAX_FEED_BYTES = 8_000_000
QUICK_CORPUS_SHARE = 0.25  # --quick: a quarter of the slots are corpus files
# Shares of the feeds on the big hosts (the rest is the long tail); see the module doc.
HOST_SHARES = (0.14, 0.06, 0.04, 0.04, 0.04)
FIRST_HOST, LAST_HOST = 2, 254  # 127.0.0.2 .. 127.0.0.254 (127.0.0.1 stays the control address)

WORDS = (
    "market interest inflation budget climate energy carbon solar policy election vote "
    "court ruling science physics biology genome vaccine health sleep brain memory music "
    "history empire war peace trade china europe america africa startup founder venture "
    "software python rust database cloud security privacy model learning language robot "
    "football tennis chess cooking coffee wine travel city housing rent mortgage pension "
    "tax debt bank crypto bitcoin stock bond fund risk story interview guest episode show"
).split()


def corpus_dir_for(repo: Path) -> Path:
    return repo.resolve().parent / "shared" / "corpus" / "feeds"


@dataclass
class FeedSpec:
    index: int
    name: str  # file name under feeds/
    source: str  # "corpus:<file>" or "generated"
    group: str
    size_bytes: int
    items: int
    has_v2: bool
    host: str = "127.0.0.1"  # the loopback address that serves it


def assign_hosts(feeds: int, seed: int) -> list[str]:
    """The host (a 127.0.0.N address) of each feed index: ``HOST_SHARES`` of the feeds,
    drawn at random (seeded), go to the first few addresses; the rest are dealt round-robin
    over the remaining addresses (the long tail)."""
    order = list(range(feeds))
    random.Random(f"{seed}:hosts").shuffle(order)
    hosts = [""] * feeds
    at, address = 0, FIRST_HOST
    for share in HOST_SHARES:
        count = round(feeds * share)
        for index in order[at:at + count]:
            hosts[index] = f"127.0.0.{address}"
        at, address = at + count, address + 1
    tail = list(range(address, LAST_HOST + 1))
    for k, index in enumerate(order[at:]):
        hosts[index] = f"127.0.0.{tail[k % len(tail)]}"
    return hosts


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def _item_xml(rng: random.Random, feed_no: int, ep_no: int, published: datetime) -> str:
    title = f"#{ep_no}: {_sentence(rng, rng.randint(3, 9))[:-1]}"
    paragraphs = "".join(f"<p>{_sentence(rng, rng.randint(8, 30))}</p>" for _ in range(rng.randint(1, 6)))
    links = "".join(f'<li><a href="https://example.org/{feed_no}/{ep_no}/{k}">{_sentence(rng, 3)}</a></li>'
                    for k in range(rng.randint(0, 5)))
    html = paragraphs + (f"<ul>{links}</ul>" if links else "")
    duration = rng.randint(300, 3 * 3600)
    dur = f"{duration // 3600:02d}:{duration % 3600 // 60:02d}:{duration % 60:02d}"
    size = rng.randint(5_000_000, 150_000_000)
    guid = f"gen-{feed_no}-{ep_no}-{rng.getrandbits(32):08x}"
    extra = ""
    if rng.random() < 0.3:
        extra += f'<podcast:transcript url="https://cdn.example.org/{feed_no}/{ep_no}.vtt" type="text/vtt"/>'
    if rng.random() < 0.4:
        extra += f"<content:encoded><![CDATA[{html}<p>{_sentence(rng, 20)}</p>]]></content:encoded>"
    return (
        f"<item><title>{escape(title)}</title>"
        f"<guid isPermaLink=\"false\">{guid}</guid>"
        f"<pubDate>{format_datetime(published)}</pubDate>"
        f"<link>https://example.org/show/{feed_no}/{ep_no}</link>"
        f"<description>{escape(html)}</description>"
        f'<enclosure url="https://cdn.example.org/{feed_no}/{ep_no}.mp3" length="{size}" type="audio/mpeg"/>'
        f"<itunes:duration>{dur}</itunes:duration><itunes:episode>{ep_no}</itunes:episode>"
        f"<itunes:explicit>false</itunes:explicit>{extra}</item>\n"
    )


def generate_feed(feed_no: int, target_bytes: int, seed: int) -> tuple[str, int, datetime, int]:
    """(RSS text, item count, newest pubDate, cadence days) of roughly ``target_bytes``."""
    rng = random.Random(f"{seed}:feed:{feed_no}")
    cadence_days = rng.choice((1, 3, 7, 7, 7, 14))
    newest = datetime(2025, 6, 2, 8, 0, tzinfo=UTC) - timedelta(hours=rng.randint(0, 240))
    head = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:podcast="https://podcastindex.org/namespace/1.0"><channel>\n'
        f"<title>Generated show {feed_no}: {escape(_sentence(rng, 3)[:-1])}</title>"
        f"<link>https://example.org/show/{feed_no}</link><language>en</language>"
        f"<description>{escape(_sentence(rng, 25))}</description>"
        f"<itunes:author>Host {feed_no}</itunes:author>"
        f'<itunes:image href="https://cdn.example.org/{feed_no}/cover.jpg"/>'
        f"<podcast:guid>{hashlib.sha256(str(feed_no).encode()).hexdigest()[:32]}</podcast:guid>\n"
    )
    items, size, n = [], len(head) + 20, 0
    while size < target_bytes or n == 0:
        published = newest - timedelta(days=cadence_days * n)
        item = _item_xml(rng, feed_no, 100_000 - n, published)
        items.append(item)
        size += len(item)
        n += 1
    return head + "".join(items) + "</channel></rss>\n", n, newest, cadence_days


def add_new_items(body: bytes, feed_no: int, seed: int) -> tuple[bytes, int]:
    """The same feed with 1-3 new items before the first one (RSS) or entry (Atom)."""
    rng = random.Random(f"{seed}:new:{feed_no}")
    count = rng.randint(1, 3)
    now = datetime(2025, 6, 3, 9, 0, tzinfo=UTC)
    match = re.search(rb"<(item|entry)[\s>]", body)
    if match and match.group(1) == b"item":
        new = "".join(_item_xml(rng, feed_no, 200_000 + k, now + timedelta(hours=k)) for k in range(count))
    elif match:
        new = "".join(
            f"<entry><id>urn:bench:{feed_no}:{k}</id><title>New entry {k}</title>"
            f"<updated>{(now + timedelta(hours=k)).strftime('%Y-%m-%dT%H:%M:%SZ')}</updated>"
            f'<link rel="enclosure" href="https://cdn.example.org/{feed_no}/new{k}.mp3" type="audio/mpeg" length="1000"/>'
            f"<summary>{_sentence(rng, 12)}</summary></entry>\n" for k in range(count))
    else:  # not a feed at all: still a different body
        return body + f"\n<!-- changed {feed_no} -->\n".encode(), 0
    return body[: match.start()] + new.encode() + body[match.start():], count


def _group_for(index: int, seed: int) -> str:
    x = random.Random(f"{seed}:group:{index}").random()
    acc = 0.0
    for group, share in GROUP_SHARES:
        acc += share
        if x < acc:
            return group
    return GROUP_SHARES[-1][0]


def target_size(index: int, seed: int) -> int:
    rng = random.Random(f"{seed}:size:{index}")
    size = MEDIAN_FEED_BYTES * math.exp(rng.gauss(0.0, SIZE_SIGMA))
    return int(min(MAX_FEED_BYTES, max(MIN_FEED_BYTES, size)))


def build_workload(out_dir: Path, *, feeds: int, seed: int, corpus_dir: Path | None,
                   corpus_share: float = 1.0) -> dict:
    """Write ``feeds`` feed bodies (+ v2 bodies) under ``out_dir/feeds`` and ``manifest.json``."""
    feed_dir = out_dir / "feeds"
    feed_dir.mkdir(parents=True, exist_ok=True)
    corpus = sorted(corpus_dir.glob("*")) if corpus_dir and corpus_dir.is_dir() else []
    corpus = [p for p in corpus if p.is_file()]
    take = min(len(corpus), int(feeds * corpus_share))
    if take < len(corpus):  # an even spread over the sorted corpus, not the first few
        step = len(corpus) / max(take, 1)
        corpus = [corpus[int(i * step)] for i in range(take)]
    specs: list[FeedSpec] = []
    hosts = assign_hosts(feeds, seed)
    for index in range(feeds):
        name = f"{index:05d}.xml"
        group = _group_for(index, seed)
        if index < len(corpus):
            body = corpus[index].read_bytes()
            source, items = f"corpus:{corpus[index].name}", len(re.findall(rb"<(?:item|entry)[\s>]", body))
        else:
            text, items, _, _ = generate_feed(index, target_size(index, seed), seed)
            body, source = text.encode(), "generated"
        (feed_dir / name).write_bytes(body)
        has_v2 = group == "new_episodes"
        if has_v2:
            body2, _ = add_new_items(body, index, seed)
            (feed_dir / f"{index:05d}.v2.xml").write_bytes(body2)
        specs.append(FeedSpec(index, name, source, group, len(body), items, has_v2, hosts[index]))
    manifest = {
        "seed": seed, "feeds": [asdict(s) for s in specs], "corpus_dir": str(corpus_dir or ""),
        "corpus_files": len(corpus),
        "total_bytes": sum(s.size_bytes for s in specs),
        "total_items": sum(s.items for s in specs),
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest))
    return manifest


def write_big_feed(path: Path, target_bytes: int, seed: int = 7) -> int:
    """One generated feed of about ``target_bytes`` (the memory test's 50 MB feed)."""
    text, items, _, _ = generate_feed(999_999, target_bytes, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return items


def summarize_sizes(manifest: dict) -> dict:
    sizes = sorted(f["size_bytes"] for f in manifest["feeds"])
    items = sorted(f["items"] for f in manifest["feeds"])

    def pct(values: list[int], q: float) -> int:
        return values[min(len(values) - 1, int(q * len(values)))] if values else 0

    return {
        "feeds": len(sizes), "corpus_files": manifest["corpus_files"],
        "total_mb": round(sum(sizes) / 1e6, 1), "total_items": sum(items),
        "size_p50_kb": round(pct(sizes, 0.5) / 1e3, 1), "size_p90_kb": round(pct(sizes, 0.9) / 1e3, 1),
        "size_max_mb": round(sizes[-1] / 1e6, 2) if sizes else 0, "size_min_kb": round(sizes[0] / 1e3, 2) if sizes else 0,
        "items_p50": pct(items, 0.5), "items_max": items[-1] if items else 0,
        "feeds_1000_items": sum(1 for i in items if i >= 1000),
        "groups": {g: sum(1 for f in manifest["feeds"] if f["group"] == g) for g, _ in GROUP_SHARES},
        "hosts": host_summary(manifest),
    }


def host_summary(manifest: dict) -> dict:
    """How the feeds spread over hosts: count, the biggest hosts, the tail."""
    per_host: dict[str, int] = {}
    for f in manifest["feeds"]:
        per_host[f.get("host", "127.0.0.1")] = per_host.get(f.get("host", "127.0.0.1"), 0) + 1
    sizes = sorted(per_host.values(), reverse=True)
    big = len(HOST_SHARES)
    return {"hosts": len(sizes), "biggest": sizes[:big], "biggest_host": max(per_host, key=per_host.get),
            "tail_hosts": len(sizes[big:]), "tail_feeds": sum(sizes[big:]),
            "tail_max": max(sizes[big:], default=0), "single_feed_hosts": sum(1 for n in sizes if n == 1)}
