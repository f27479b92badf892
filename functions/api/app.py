"""Public HTTP API: topic pages, topic RSS, subscriptions. Routing lives in earshot.web.api."""

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.logging import correlation_paths

from earshot.web.api import app

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
def handler(event, context):
    return app.resolve(event, context)
