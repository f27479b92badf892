"""Storage: the port every domain module uses (:class:`Store`) and its DynamoDB adapter.

Owns: the store interface, ids and timestamps as stored, the DynamoDB key layout, and
the transcript archive port with its S3 adapter (``archive``: the only S3 code).
May import: ``earshot.models``, ``earshot.mail.tokens`` (records), ``earshot.settings``.
"""

from earshot.store.port import Store, feed_id_for, iso, parse_iso

__all__ = ["Store", "feed_id_for", "iso", "parse_iso"]
