"""What every earful package shares, and nothing else.

Connectors, rules and destinations are leaves: each imports only this
package, never each other or the hub (`earful.monitors`). Anything two
leaves need (the shape of a mention, a rule's verdict, an alert, one
duration grammar, one time parser, one Retry-After parser, the query
language) therefore lives here, once. It imports nothing of earful.
"""

from .alert import Alert
from .durations import format_duration, parse_duration
from .match import SEVERITY_ORDER, Match, Severity
from .mention import KINDS, Mention, MentionKind
from .names import Names, one_or_many
from .retry_after import parse_retry_after, retry_after_header
from .times import iso, parse_time, utcnow

__all__ = [
    "Alert", "KINDS", "Match", "Mention", "MentionKind", "Names", "SEVERITY_ORDER", "Severity",
    "format_duration", "iso", "one_or_many", "parse_duration", "parse_retry_after", "parse_time", "retry_after_header", "utcnow",
]
