"""Directory: finding the podcasts for a topic in podcast directories, ranking them by evidence.

Owns: the directory clients (``clients``, the only code that talks to Apple Podcasts
search and the Podcast Index), search terms and candidate ranking (``ranking``, pure),
and discovery runs, candidates and their approval (``discovery``).
May import: the core (``settings``, ``errors``, ``models``, ``textutil``, ``identity``, ``templating``),
``earshot.store``, ``earshot.ingest`` (every HTTP request goes through its fetcher; candidate
feeds are fetched and parsed the normal way) and ``earshot.topics`` (the query language).
"""
