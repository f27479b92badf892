"""Process-wide services for the Lambda handlers, built once per cold start.

Clients are built lazily (first use), so tests and the embedded backend can start moto
before anything touches AWS.
"""

from __future__ import annotations

import functools

import boto3
import httpx

from earshot.mailer import ses_client
from earshot.matching import clear_topic_cache
from earshot.queue import Queue
from earshot.repository import Repository
from earshot.settings import Settings, get_settings


@functools.cache
def repository() -> Repository:
    settings = get_settings()
    return Repository(settings.table_name, client=boto3.client("dynamodb", region_name=settings.region),
                      due_shards=settings.due_shards)


@functools.cache
def fetch_queue() -> Queue:
    settings = get_settings()
    return Queue(settings.fetch_queue_url, client=sqs_client())


@functools.cache
def digest_queue() -> Queue:
    settings = get_settings()
    return Queue(settings.digest_queue_url, client=sqs_client())


@functools.cache
def sqs_client():  # type: ignore[no-untyped-def]
    return boto3.client("sqs", region_name=get_settings().region)


@functools.cache
def http_client() -> httpx.Client:
    from earshot.fetcher import make_client

    return make_client(get_settings())


def settings() -> Settings:
    return get_settings()


def reset() -> None:
    """Forget every cached service (the embedded backend calls this when it starts/stops)."""
    for cached in (repository, fetch_queue, digest_queue, sqs_client, http_client, ses_client):
        cached.cache_clear()
    clear_topic_cache()
    get_settings.cache_clear()
