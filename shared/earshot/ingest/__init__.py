"""Ingest: schedule -> dispatch -> fetch -> parse -> store, one feed at a time.

Owns: HTTP (``fetcher``, the only network code), feed parsing, the refresh steps, the next-check policy.
May import: the core (``settings``, ``errors``, ``models``, ``textutil``, ``identity``, ``queue``) and
``earshot.store``.
"""
