"""Topics: queries, matching episodes to them, dedup, stats, the topic page and its RSS feed.

Owns: the query language, matches and backfill (``service``), everything a topic page shows.
May import: the core (``settings``, ``errors``, ``models``, ``textutil``, ``identity``, ``templating``) and
``earshot.store``.
"""
