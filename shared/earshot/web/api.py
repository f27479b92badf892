"""The public HTTP API (one Lambda behind an HTTP API), built with Powertools' event handler.

Routes are grouped by role into routers, each in its own module:
``routes_topics`` (topic page and topic RSS) and ``routes_subscriptions`` (subscribe,
confirm, unsubscribe). Domain errors are mapped to HTTP statuses here, in one place. The
API sends no mail: subscribe requests are queued for the confirmation mailer.
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types

from earshot.errors import InvalidEmail, NotFound, QueryError, TokenError
from earshot.web import subscriptions as routes_subscriptions
from earshot.web import topics as routes_topics

app = APIGatewayHttpResolver(enable_validation=True)
app.include_router(routes_topics.router)
app.include_router(routes_subscriptions.router)


def _plain(status: int, message: str) -> Response[str]:
    # The message may echo request text (a slug): never let a browser sniff it into HTML.
    return Response(status_code=status, content_type=content_types.TEXT_PLAIN, body=message,
                    headers={"X-Content-Type-Options": "nosniff"})


@app.exception_handler(NotFound)
def _not_found(exc: NotFound) -> Response[str]:
    return _plain(404, str(exc))


@app.exception_handler(TokenError)
def _bad_token(exc: TokenError) -> Response[str]:
    return _plain(400, "This link is invalid or has expired.")


@app.exception_handler(QueryError)
def _bad_query(exc: QueryError) -> Response[str]:
    return _plain(400, str(exc))


@app.exception_handler(InvalidEmail)
def _bad_email(exc: InvalidEmail) -> Response[str]:
    return _plain(400, str(exc))
