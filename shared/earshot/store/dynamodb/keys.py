"""The DynamoDB key layout: every item's keys are built here and nowhere else.

Single table (keys are strings):

    item             pk                      sk                                     GSIs
    ---------------  ----------------------  -------------------------------------  -----------------------------
    feed             FEED#<feed_id>          FEED                                   due: DUE#<shard> / next_check_at
                                                                                    type: FEED / <url>
    episode          FEED#<feed_id>          EP#<episode_id>                        -
    transcript state FEED#<feed_id>          TX#<episode_id>                        -
    topic            TOPIC#<slug>            TOPIC                                  type: TOPIC / <slug>
    topic match      TOPIC#<slug>            MATCH#<published>#<feed_id>#<ep_id>    -
    backfill run     TOPIC#<slug>            BACKFILL                               -
    subscriber       ADDR#<address_hash>     SUB#<topic>                            type: SUBSCRIBERS#<topic>
                                                                                          (confirmed only)
    confirm window   ADDR#<address_hash>     CONFIRMS                               - (TTL)
    send claim       ADDR#<address_hash>     SENT#<topic>#<iso week>                - (TTL)
    token            TOKEN#<sha256>          TOKEN                                  - (TTL)
    rendered digest  DIGEST#<topic>          WEEK#<iso week>                        - (TTL)
    directory answer DIRECTORY#<sha256>      ANSWER                                 - (TTL)
    candidate        DISCOVERY#<topic>       CANDIDATE#<sha256 of candidate key>    -
    host slot        HOST#<host>             SLOT#<n>                               - (TTL)

``expires_at`` (epoch seconds) is the table's TTL attribute. TTL deletion lags by up to
days, so code also checks expiry itself (``earshot.mail.tokens.verify``).
"""

from __future__ import annotations

import hashlib

from earshot.models import MatchedEpisode
from earshot.store.port import iso

FEED_PREFIX = "FEED#"
FEED_SK = "FEED"
EP_PREFIX = "EP#"
TX_PREFIX = "TX#"
TOPIC_SK = "TOPIC"
MATCH_PREFIX = "MATCH#"
UNDATED = "0000-00-00T00:00:00Z"
DUE_INDEX = "due"
TYPE_INDEX = "type"

# A feed's attributes that the ``type`` index keys or projects and that a check only
# rewrites when they changed (template.yaml projects them). ``status`` is projected too
# but always written: a queued check's snapshot of it may be stale after a retry.
TYPE_INDEXED_FEED_ATTRIBUTES = ("type_pk", "type_sk", "url", "title")
# Attributes the due index projects: what a fetch check (FeedCheck) carries besides its
# key. tests/test_consistency.py holds this, template.yaml and FeedCheck in step.
DUE_PROJECTION = (
    "url", "status", "etag", "last_modified", "body_sha256", "error_count", "interval_s",
    "title", "episode_count",
)

Key = dict[str, str]


def shard_for(feed_id: str, shards: int) -> int:
    """The due-index shard of a feed (stable: a hash of its id)."""
    return int(hashlib.sha256(feed_id.encode()).hexdigest()[:8], 16) % shards


def due_pk(shard: int) -> str:
    return f"DUE#{shard}"


def feed_pk(feed_id: str) -> str:
    return FEED_PREFIX + feed_id


def feed(feed_id: str) -> Key:
    return {"pk": feed_pk(feed_id), "sk": FEED_SK}


def episode(feed_id: str, episode_id: str) -> Key:
    return {"pk": feed_pk(feed_id), "sk": EP_PREFIX + episode_id}


def topic_pk(slug: str) -> str:
    return f"TOPIC#{slug}"


def topic(slug: str) -> Key:
    return {"pk": topic_pk(slug), "sk": TOPIC_SK}


def backfill(slug: str) -> Key:
    """A topic's backfill run (one per topic: a new run replaces the last)."""
    return {"pk": topic_pk(slug), "sk": "BACKFILL"}


def match_sk(match: MatchedEpisode) -> str:
    """Orders a topic's matches by publication date; undated ones sort first ascending
    (last when read newest-first). The episode id is the last part."""
    published = iso(match.published) or UNDATED
    return f"{MATCH_PREFIX}{published}#{match.feed_id}#{match.episode_id}"


def episode_of_match_sk(sk: str) -> str:
    return sk.split("#", 3)[3]


def match(slug: str, m: MatchedEpisode) -> Key:
    return {"pk": topic_pk(slug), "sk": match_sk(m)}


def address_pk(address_hash: str) -> str:
    return f"ADDR#{address_hash}"


def subscriber(address_hash: str, topic_slug: str) -> Key:
    return {"pk": address_pk(address_hash), "sk": f"SUB#{topic_slug}"}


def subscribers_type_pk(topic_slug: str) -> str:
    return f"SUBSCRIBERS#{topic_slug}"


def confirm_window(address_hash: str) -> Key:
    """The address's rolling window of confirmation mails (request id -> epoch second)."""
    return {"pk": address_pk(address_hash), "sk": "CONFIRMS"}


def send_claim(address_hash: str, topic_slug: str, week: str) -> Key:
    return {"pk": address_pk(address_hash), "sk": f"SENT#{topic_slug}#{week}"}


def token(token_hash: str) -> Key:
    return {"pk": f"TOKEN#{token_hash}", "sk": "TOKEN"}


def rendered_digest(topic_slug: str, week: str) -> Key:
    return {"pk": f"DIGEST#{topic_slug}", "sk": f"WEEK#{week}"}


def directory_answer(cache_key: str) -> Key:
    """A cached directory answer; the key (source, endpoint, parameters) is hashed to a
    fixed length whatever the search term was."""
    return {"pk": f"DIRECTORY#{hashlib.sha256(cache_key.encode()).hexdigest()[:32]}", "sk": "ANSWER"}


def candidates_pk(topic_slug: str) -> str:
    return f"DISCOVERY#{topic_slug}"


def candidate(topic_slug: str, candidate_key: str) -> Key:
    digest = hashlib.sha256(candidate_key.encode()).hexdigest()[:32]
    return {"pk": candidates_pk(topic_slug), "sk": f"CANDIDATE#{digest}"}


def transcript_state(feed_id: str, episode_id: str) -> Key:
    """An episode's transcript state, beside the episode in its feed's partition (the
    text is in the transcript archive, never in an item)."""
    return {"pk": feed_pk(feed_id), "sk": TX_PREFIX + episode_id}
def host_pk(host: str) -> str:
    return f"HOST#{host}"


def host_slot(host: str, slot: int) -> Key:
    """One of a host's request slots (a lease on it: holder and expires_at)."""
    return {"pk": host_pk(host), "sk": f"SLOT#{slot}"}


def slot_of_sk(sk: str) -> int:
    return int(sk.removeprefix("SLOT#"))
