"""Publishers' transcripts (``<podcast:transcript>``): choose, fetch, parse, keep, match.

Owns: picking an episode's best transcript (``choice``), reading every transcript format
into cues (``cues``, pure), the transcript archive port and its S3 adapter (``archive``,
the only module that talks to S3), and the worker's straight line: fetch through the
fetcher, parse, archive, record the state on the episode, re-match topics (``retrieval``).

May import: the core modules, ``store``, ``ingest`` (the fetcher: the only HTTP code),
``topics`` (matching) and itself.
"""
