"""Earshot: follow a topic across podcasts.

The path of one event, package by package::

    schedule -> ingest.dispatch -> ingest.fetcher -> ingest.parser -> ingest.refresh
             -> topics.matching -> store (port; DynamoDB adapter here, SQLite in earshot_local)
             -> mail.delivery (weekly: mail.digest renders, mail.mailer sends)
    web.api: the public HTTP routes

The core (``settings``, ``errors``, ``models``, ``textutil``, ``identity``, ``templating``,
``queue``) imports no subpackage. Only ``ingest.fetcher`` talks HTTP, only ``store.dynamodb``
talks DynamoDB, only ``mail.mailer`` talks SES and only ``queue`` talks SQS
(``runtime`` builds their clients); tests/test_architecture.py holds these rules.
"""

__version__ = "0.1.0"
