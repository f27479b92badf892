"""The digest table: one topic, N subscribers. The digest is rendered once
(``digest.render_digest``) and the MIME skeleton built once (``mime.prepare``); per
subscriber the work is what ``delivery.send_batch`` does between its DynamoDB and SES
calls: an unsubscribe token (``tokens.issue_token``), ``RenderedDigest.personalize``
and ``mime.assemble``. One thread, so messages/s is per core. Peak memory by
tracemalloc (a separate, second pass: tracing slows Python down). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta


def build_inputs(episodes: int = 25):  # noqa: ANN201
    from earshot.models import Topic
    from earshot.topics.stats import BestPodcast, EpisodeCard, TopicReport

    now = datetime(2025, 6, 2, 8, 0, tzinfo=UTC)
    cards = [EpisodeCard(
        podcast=f"Podcast {i % 7}", title=f"Episode {i}: interest rates, pensions and the bond market",
        guid=f"g{i}", episode_id=f"e{i}", feed_id=f"f-{i % 7:016x}", published=now - timedelta(hours=5 * i),
        duration_seconds=1800 + 60 * i, has_transcript=i % 3 == 0,
        summary=("A long conversation about monetary policy, pension funds and what the bond market "
                 "is telling us. ") * 3, listen_url=f"https://cdn.example.org/{i}.mp3",
        reason='"bond market" in description', also_in=i % 2) for i in range(episodes)]
    report = TopicReport(
        podcasts=7, episodes=episodes, duplicates_folded=3, avg_duration_seconds=2400,
        cadence="3 episodes a week", latest=cards[0].published, per_year={"2024": 40, "2025": episodes},
        best_podcasts=[BestPodcast(podcast=f"Podcast {i}", feed_id=f"f-{i:016x}", episodes_last_12_months=10 - i,
                                   latest=now) for i in range(5)],
        latest_episodes=cards)
    topic = Topic(slug="bond-market", name="The bond market", query='"bond market" OR pensions')
    return topic, report, now


def run(subscribers: int) -> tuple[float, float, int, int]:
    from earshot.mail import digest
    from earshot.mail import mime
    from earshot.mail import tokens

    topic, report, now = build_inputs()
    started = time.perf_counter()
    rendered = digest.render_digest(topic, report, week="2025-W22", base_url="https://earshot.example",
                                    domain="earshot.example")
    skeleton = mime.prepare(sender="Earshot <digest@earshot.example>", subject=rendered.subject,
                            list_id_value=rendered.list_id)
    render_s = time.perf_counter() - started
    total_bytes = 0
    for n in range(subscribers):
        address_hash = f"{n:064x}"
        token, _record = tokens.issue_token("unsubscribe", topic=topic.slug, address_hash=address_hash, now=now)
        url = f"https://earshot.example/unsubscribe?t={token}"
        text, html = rendered.personalize(url)
        raw = mime.assemble(skeleton, to=f"reader{n}@example.com", now=now, text=text, html=html,
                            unsubscribe=mime.Unsubscribe(url=url, mailto="unsubscribe@earshot.example", token=token))
        total_bytes += len(raw)
    return render_s, time.perf_counter() - started, total_bytes, len(rendered.html)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=10_000)
    args = parser.parse_args()
    try:
        from earshot.mail import mime  # noqa: F401
        from earshot.mail import digest
    except ImportError as exc:
        print(json.dumps({"error": f"pending: {exc}"}))
        return
    run(200)  # warm up imports and template caches
    render_s, total_s, total_bytes, html_chars = run(args.subscribers)
    tracemalloc.start()
    run(args.subscribers)
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    per_msg_s = (total_s - render_s) / args.subscribers
    print(json.dumps({
        "subscribers": args.subscribers, "render_once_ms": round(render_s * 1000, 2),
        "total_s": round(total_s, 3), "messages_per_s": round(args.subscribers / total_s, 1),
        "ms_per_message": round(per_msg_s * 1000, 4), "avg_message_kb": round(total_bytes / args.subscribers / 1024, 1),
        "html_chars": html_chars, "tracemalloc_peak_mb": round(peak / 1e6, 2),
    }))
    print(f"  digest: {args.subscribers / total_s:,.0f} messages/s", file=sys.stderr)


if __name__ == "__main__":
    main()
