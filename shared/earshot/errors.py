"""Earshot's errors. Failures are data: each class carries a stable ``kind`` that is
recorded on the feed (or subscriber) it happened to and counted in metrics.

    EarshotError
    ├── FeedError                    a feed could not be refreshed (recorded on the feed)
    │   ├── FetchError               the HTTP exchange failed
    │   │   ├── BlockedAddress       blocked_address: resolves to a private/loopback/metadata IP
    │   │   ├── InvalidUrl           invalid_url: not an http(s) URL we can fetch
    │   │   ├── ConnectFailed        connect_error: DNS or TCP/TLS connect failed
    │   │   ├── ProtocolFailed       protocol_error: connected, then reset / bad framing / cut short
    │   │   ├── FetchTimeout         timeout: connect or total deadline passed
    │   │   ├── TooManyRedirects     too_many_redirects: more than the allowed hops, or a loop
    │   │   ├── BodyTooLarge         body_too_large: the body (inflated) passed the cap
    │   │   ├── DecodeFailed         decode_error: broken gzip/deflate stream
    │   │   ├── HttpStatusError      http_<code>: 4xx/5xx answer (429/503 carry retry_after_s)
    │   │   └── FeedGone             gone: 410, the feed is retired for good
    │   ├── ParseError               the bytes are not a usable feed
    │   │   ├── NotAFeed             not_a_feed: HTML page, empty body, no channel or items
    │   │   ├── MalformedFeed        malformed: XML too broken to recover anything
    │   │   └── UnsafeXml            unsafe_xml: DTD entity declarations (XXE, billion laughs)
    │   └── InternalFeedError        internal_error: a bug met this feed's input (logged with a traceback)
    ├── TranscriptError              a transcript could not be used (recorded on its episode;
    │   │                            fetch failures keep their FetchError kind)
    │   ├── NoUsableTranscript       no_transcript: none of the episode's transcripts can be fetched
    │   ├── TranscriptUnreadable     transcript_unreadable: not text (binary, undecodable bytes)
    │   ├── TranscriptMalformed      transcript_malformed: no cue could be read in the stated format
    │   └── TranscriptHostBusy       host_busy: the host's request slots were all taken; tried later
    ├── QueryError                   query_error: a topic query does not parse (has .position)
    ├── DirectoryError               directory_error: a podcast directory could not be searched
    │   ├── DirectoryThrottled       directory_throttled: 403/429 from the directory (has .retry_after_s)
    │   ├── DirectoryAnswerInvalid   directory_malformed: the answer is not the JSON its docs describe
    │   └── DirectoryNotConfigured   directory_not_configured: a key the directory needs is not set
    ├── InvalidTopic                 invalid_topic: bad slug or name, or the slug is taken
    ├── NotFound                     not_found: unknown topic/feed/subscription
    ├── TokenError                   invalid_token: tampered, unknown, used or expired token
    ├── InvalidEmail                 invalid_email: not a deliverable-looking address (HTTP 400)
    └── MailError                    mail_error: an SES call failed (recorded per send); SES
        │                            answered with an error, so nothing was sent
        ├── SendThrottled            mail_throttled: rate or daily quota hit; retry later
        ├── MailUnreachable          mail_unreachable: no connection to SES (or SMTP); nothing sent, retry
        ├── RecipientRejected        mail_rejected: refused for this recipient; never retried
        ├── SendingUnavailable       mail_unavailable: SES will not send at all (paused, suspended,
        │                            identity unverified, sandbox); retry the batch, page someone
        └── SendOutcomeUnknown       mail_outcome_unknown: the request may have reached SES and no
                                     answer came back (read timeout, connection cut, 5xx): it may
                                     or may not have been sent; recorded, never retried

Every ``MailError`` but ``SendOutcomeUnknown`` means SES certainly did not send.
"""

from __future__ import annotations


class EarshotError(Exception):
    """Base of every error Earshot raises on purpose."""

    kind: str = "error"

    def __init__(self, message: str = "", **details: object) -> None:
        super().__init__(message or self.__class__.__doc__ or self.kind)
        self.message = message or (self.__class__.__doc__ or self.kind).strip()
        self.details = details

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message


class FeedError(EarshotError):
    """A feed could not be refreshed."""

    kind = "feed_error"


class FetchError(FeedError):
    """The HTTP exchange failed."""

    kind = "fetch_error"


class BlockedAddress(FetchError):
    """The URL resolves to an address Earshot refuses to connect to."""

    kind = "blocked_address"


class InvalidUrl(FetchError):
    """Not an http(s) URL that can be fetched."""

    kind = "invalid_url"


class ConnectFailed(FetchError):
    """DNS lookup or TCP/TLS connect failed."""

    kind = "connect_error"


class ProtocolFailed(FetchError):
    """Connected, then the exchange broke: connection reset, bad HTTP framing, truncated body."""

    kind = "protocol_error"


class FetchTimeout(FetchError):
    """The connect timeout or the total deadline passed."""

    kind = "timeout"


class TooManyRedirects(FetchError):
    """More redirects than allowed, or a redirect loop."""

    kind = "too_many_redirects"


class BodyTooLarge(FetchError):
    """The (inflated) body passed the size cap."""

    kind = "body_too_large"


class DecodeFailed(FetchError):
    """The gzip/deflate stream is broken."""

    kind = "decode_error"


class HttpStatusError(FetchError):
    """The server answered with an error status."""

    kind = "http_error"

    def __init__(self, status: int, message: str = "", retry_after_s: float | None = None) -> None:
        super().__init__(message or f"HTTP {status}")
        self.status = status
        self.retry_after_s = retry_after_s
        self.kind = f"http_{status}"


class FeedGone(FetchError):
    """HTTP 410 Gone: the publisher retired the feed."""

    kind = "gone"


class ParseError(FeedError):
    """The bytes are not a usable feed."""

    kind = "parse_error"


class NotAFeed(ParseError):
    """The document is not a podcast/RSS/Atom feed."""

    kind = "not_a_feed"


class MalformedFeed(ParseError):
    """The XML is too broken to recover any feed from."""

    kind = "malformed"


class UnsafeXml(ParseError):
    """The XML declares entities (XXE / entity expansion); refused before parsing."""

    kind = "unsafe_xml"


class InternalFeedError(FeedError):
    """Unexpected failure while fetching or parsing this feed (a bug; logged with a traceback)."""

    kind = "internal_error"


class TranscriptError(EarshotError):
    """A publisher's transcript could not be used; the episode itself is unaffected."""

    kind = "transcript_error"


class NoUsableTranscript(TranscriptError):
    """None of the episode's ``podcast:transcript`` URLs is an http(s) URL Earshot can fetch."""

    kind = "no_transcript"


class TranscriptUnreadable(TranscriptError):
    """The transcript's bytes are not text (binary data, or no encoding fits)."""

    kind = "transcript_unreadable"


class TranscriptMalformed(TranscriptError):
    """Not one cue could be read from the transcript in its format."""

    kind = "transcript_malformed"


class TranscriptHostBusy(TranscriptError):
    """The transcript's host had no free request slot (other Earshot requests held them):
    nothing was fetched; tried again later."""

    kind = "host_busy"


class QueryError(EarshotError):
    """A topic query does not parse."""

    kind = "query_error"

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} at position {position}")
        self.position = position


class InvalidTopic(EarshotError):
    """A topic's slug or name is not acceptable (the query raises QueryError instead)."""

    kind = "invalid_topic"


class NotFound(EarshotError):
    """No such topic, feed or subscription."""

    kind = "not_found"


class TokenError(EarshotError):
    """The token is tampered, unknown, already used or expired."""

    kind = "invalid_token"


class InvalidEmail(EarshotError):
    """The email address is not valid."""

    kind = "invalid_email"


class MailError(EarshotError):
    """An SES call failed."""

    kind = "mail_error"


class SendThrottled(MailError):
    """SES throttled the send (rate or daily quota); retry later."""

    kind = "mail_throttled"


class RecipientRejected(MailError):
    """SES refused this message for this recipient; do not retry it."""

    kind = "mail_rejected"


class SendingUnavailable(MailError):
    """Sending cannot work at all right now (paused, suspended, identity unverified or
    missing, sandbox): no recipient's fault; retry later and alert an operator."""

    kind = "mail_unavailable"


class MailUnreachable(MailError):
    """No connection to the mail service (SES; the SMTP relay locally) could be made (DNS,
    connect refused or timed out): the request never left, so nothing was sent; retry later."""

    kind = "mail_unreachable"


class SendOutcomeUnknown(MailError):
    """The send request may have reached SES but no answer came back (a read timeout, a
    connection cut mid-exchange, an internal error): the mail may or may not have gone.
    Never retried, because a retry could mail the person twice; recorded and counted."""

    kind = "mail_outcome_unknown"


class DirectoryError(EarshotError):
    """A podcast directory (Apple Podcasts search, the Podcast Index) could not be searched."""

    kind = "directory_error"


class DirectoryThrottled(DirectoryError):
    """The directory refused for now (HTTP 403 or 429): Earshot backs off until ``retry_after_s``."""

    kind = "directory_throttled"

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class DirectoryAnswerInvalid(DirectoryError):
    """The directory answered, but not with the JSON its documentation describes."""

    kind = "directory_malformed"


class DirectoryNotConfigured(DirectoryError):
    """A directory that needs a key (the Podcast Index) was asked without one."""

    kind = "directory_not_configured"
