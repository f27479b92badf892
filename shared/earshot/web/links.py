"""The base URL of the links Earshot builds (pages, confirmation and unsubscribe links).

``Settings.public_base_url`` wins when set (the template's ``PublicBaseUrl``, a custom
domain that outlives any API). When it is empty, which is how the deployed API runs
without a custom domain, the API uses the domain the request itself arrived on:
``requestContext.domainName``, which API Gateway sets (the execute-api host, or the
custom domain that was called) and a client cannot: it is not the Host header
(https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html).
HTTP APIs serve https only, so the scheme is fixed.

This keeps the API function free of any reference to the HttpApi resource in the
template (the API's body already references the function, so the reverse would be a
dependency cycle).
"""

from __future__ import annotations

import re

from earshot.settings import Settings

_HOST = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::[0-9]{1,5})?$")


def public_base_url(settings: Settings, domain_name: str | None = None) -> str:
    """``settings.public_base_url``, else ``https://<domain_name>``; no trailing slash.

    >>> from earshot.settings import Settings
    >>> public_base_url(Settings(EARSHOT_PUBLIC_BASE_URL="https://earshot.example.org/"), "x.execute-api.aws")
    'https://earshot.example.org'
    >>> public_base_url(Settings(EARSHOT_PUBLIC_BASE_URL=""), "abc123.execute-api.us-east-1.amazonaws.com")
    'https://abc123.execute-api.us-east-1.amazonaws.com'
    """
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/")
    if domain_name and _HOST.match(domain_name):
        return f"https://{domain_name.lower()}"
    raise ValueError("no public base URL: EARSHOT_PUBLIC_BASE_URL is empty and the request names no domain")
