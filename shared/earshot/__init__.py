"""Earshot: follow a topic across podcasts.

The path of one event, module by module::

    schedule -> dispatch (dispatch.py) -> fetch (fetcher.py) -> parse (parser.py)
             -> store (repository.py) -> match (query.py, matching.py)
             -> weekly digest (digest.py) -> send (mailer.py)

Only ``fetcher`` talks HTTP, only ``repository`` talks DynamoDB, only ``mailer``
talks SES and only ``queue`` talks SQS; everything else is pure.
"""

__version__ = "0.1.0"
