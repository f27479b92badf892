"""Earshot on one machine: the ``earshot`` CLI, the SQLite store, the local queue, the mail
outbox and ``earshot serve``. Not part of the Lambda layer (``shared/``): nothing here is
deployed. It runs the same domain code and the same handlers on local adapters.

Owns: local adapters (SQLite store and queue, outbox mailer), the local runtime that
installs them, the CLI and the local web server.
May import: ``earshot`` (any of it) and local-only libraries (PyYAML, platformdirs, waitress).
"""
