"""Web: the public HTTP API's routes (topic page and feed, subscribe, confirm, unsubscribe).

Owns: HTTP request/response shapes and the one place domain errors become statuses (``api``).
May import: the core, ``earshot.runtime``, ``earshot.store``, ``earshot.topics.service``, ``earshot.mail``.
"""
