"""HTTP routes: subscriptions (placeholder until built)."""

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

router = APIGatewayHttpRouter()
