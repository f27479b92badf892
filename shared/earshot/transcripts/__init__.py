"""Publishers' transcripts (``<podcast:transcript>``): choose, fetch, parse, keep, match.

Owns: picking an episode's best transcript (``choice``), reading every transcript format
into cues (``cues``, pure), and the worker's straight line: fetch through the fetcher,
parse, archive, record the state beside the episode, re-match topics (``retrieval``).
The archive port and its S3 adapter are storage (``earshot.store.archive``).

May import: the core modules, ``store``, ``ingest`` (the fetcher: the only HTTP code),
``topics`` (matching) and itself.
"""
