"""Scheduled weekly (template.yaml DiscoverySchedule, off unless enabled): for each topic,
search the podcast directories, check the candidates and record them for approval; a
topic set to auto-add (``earshot topics autodiscover SLUG on``) adds those above its
threshold. ``{"topic": "slug"}`` runs one topic.

The Podcast Index's key and secret come from the SSM SecureString named by
EARSHOT_PODCASTINDEX_PARAMETER (never from the template); without it only Apple
Podcasts search is used.
"""

from aws_lambda_powertools.utilities.parser import event_parser

from earshot import runtime
from earshot.directory.discovery import DiscoveryRequest, discover_topics
from earshot.observability import count, declare_metrics, logger, observed

# Leave this long for the topic in progress when deciding whether to start another.
TOPIC_BUDGET_MS = 180_000
METRICS = declare_metrics("DiscoveryCandidatesProposed", "DiscoveryFeedsAdded")


@observed
@event_parser(model=DiscoveryRequest)
def handler(request: DiscoveryRequest, context) -> dict:
    result = discover_topics(
        runtime.store(), settings=runtime.directory_settings(), client=runtime.http_client(), only=request.topic,
        now=runtime.now(), should_start=lambda: context.get_remaining_time_in_millis() > TOPIC_BUDGET_MS)
    count("DiscoveryCandidatesProposed", sum(t.proposed for t in result.topics))
    count("DiscoveryFeedsAdded", sum(len(t.added) for t in result.topics))
    logger.info("discovery run", extra=result.model_dump())
    return result.model_dump()
