"""Mail: subscriptions, tokens, the weekly digest (render once, send per subscriber), MIME, SES.

Owns: double opt-in, send claims, bounces, the only SES code (``mailer``).
May import: the core, ``earshot.store`` and ``earshot.topics.service`` (a digest is a topic's week).
"""
