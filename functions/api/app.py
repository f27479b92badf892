"""Public HTTP API: topic pages, topic RSS, subscriptions. Routing lives in earshot.web.api."""

from aws_lambda_powertools.logging import correlation_paths

from earshot.observability import observed
from earshot.web.api import app


@observed(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, flush_metrics=False)
def handler(event, context):
    return app.resolve(event, context)
