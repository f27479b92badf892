"""The deployed discovery function, fed its sample event on the embedded stack (moto):
the Podcast Index key and secret come from SSM, candidates land in DynamoDB."""

from __future__ import annotations

import boto3

from earshot import runtime
from earshot.models import Topic
from earshot_local.cli.topics import FINANCE_QUERY
from tests.directory.test_discovery import FEEDS
from tests.support.aws_stack import REGION, EmbeddedBackend, sample_event
from tests.support.directories import FakeAppleSearch, FakePodcastIndex, Show
from tests.support.feedserver import Serve, running_feed_server


def test_weekly_discovery_reads_the_index_key_from_ssm_and_records_candidates() -> None:
    with running_feed_server() as server:
        on_topic = server.route("/midstream.xml", Serve((FEEDS / "midstream-minute.xml").read_bytes()))
        pony = server.route("/pony.xml", Serve((FEEDS / "friendship-is-podcasts.xml").read_bytes()))
        shows = [Show(title="Midstream Minute", feed_url=on_topic, keywords=("MLP",), pi_id=1),
                 Show(title="Friendship Is Podcasts", feed_url=pony, keywords=("MLP",), pi_id=2)]
        apple, index = FakeAppleSearch(shows), FakePodcastIndex(shows)
        server.route("/search", apple)
        server.route("/api/1.0/search/byterm", index)
        with EmbeddedBackend(extra_env={
            "EARSHOT_ALLOWED_HOSTS": ",".join(server.authorities),
            "EARSHOT_APPLE_SEARCH_URL": server.url("/search"), "EARSHOT_APPLE_CALLS_PER_MINUTE": "60000",
            "EARSHOT_PODCASTINDEX_URL": server.url("/api/1.0"),
            "EARSHOT_PODCASTINDEX_PARAMETER": "/earshot/podcastindex",
        }) as stack:
            # Given the key in SSM, as docs/discovery.md says to store it
            boto3.client("ssm", region_name=REGION).put_parameter(
                Name="/earshot/podcastindex", Type="SecureString", Value=f"{index.key}:{index.secret}")
            repo = runtime.store()
            repo.create_topic(Topic(slug="mlp-finance", name="MLPs", query=FINANCE_QUERY))
            # When the weekly schedule fires
            outcome = stack.invoke("discovery", sample_event("discovery_scheduled"))
            # Then both directories were searched, the index with valid auth headers
            assert index.calls and index.auth_failures == 0
            assert apple.calls
            (topic,) = outcome["topics"]
            assert topic["topic"] == "mlp-finance" and topic["errors"] == [] and topic["added"] == []
            candidates = repo.list_candidates("mlp-finance")
            assert [c.feed_url for c in candidates] == [on_topic], "only the candidate with matches waits"
            assert candidates[0].sources == ["apple", "podcastindex"] and candidates[0].status == "proposed"
