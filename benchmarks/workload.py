"""Deterministic, realistic workloads: brand names, rule packs and posts.

Everything is generated from a seeded `random.Random`, so two runs (and two
machines) measure the same posts against the same rules.

* Brands are made-up, pronounceable names ("zentrix", "quorvo"), a few
  written with accents ("Lumière") or as a domain ("zentrix.io"), each with
  a product word ("zentrix crm"). The brand universe is fixed; a rule set of
  N rules covers the first N/5 brands (five rules per brand, as a real
  pack has: complaint, question, outage, churn, review ...).
* Rules are what admins write, always anchored on a brand or product name:
  ``zentrix (broken OR refund OR "never respond*") -"job offer"``, plus
  phrases, wildcards, NOT, ``title:``, and field filters (``type:``,
  ``rating:``, ``source:``, ``lang:``, ``site:``) at the top level.
* Posts are about 300 characters of customer chatter: complaint and question
  phrases, filler, brand mentions (popular brands more often: Zipf-like),
  accents, curly quotes, emoji, URLs, hashtags, @handles, an occasional
  obfuscated domain ("zentrix[.]io", "zentrix dot io") and CJK.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from earful.core import Mention
from earful.rules.models import Rule, RulePack

RULES_PER_BRAND = 5
BRAND_UNIVERSE = 4000
FANCY_SHARE = 0.35  # posts written with non-ASCII: curly quotes, emoji, accents, CJK

_ONSETS = ["b", "br", "c", "cl", "d", "dr", "f", "fl", "g", "gr", "k", "kr", "l", "m", "n", "p", "pl", "qu", "r",
           "s", "sk", "st", "t", "tr", "v", "vr", "z", "zh", "x", "j"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ei", "ou", "y"]
_CODAS = ["", "", "n", "r", "x", "m", "s", "l", "nt", "rk", "ck", "sh", "v"]
_SUFFIXES = ["", "", "", "ly", "io", "ify", "hub", "desk", "ware", "labs", "pay", "flow", "base"]
_ACCENTED = ["é", "è", "ü", "ö", "å", "ñ", "ç"]

PRODUCTS = ["crm", "app", "cloud", "pay", "mail", "docs", "analytics", "desk", "api", "sync", "chat", "drive",
            "invoice", "vpn", "router", "phone", "watch", "hosting", "checkout", "calendar"]
TLDS = ["com", "io", "app", "co", "ai"]

COMPLAINTS = [
    "is broken again", "keeps crashing on login", "charged me twice and I want a refund", "never responded to my ticket",
    "support never responds", "has been down all morning", "lost all my data", "is not working after the update",
    "is so slow today", "double billed me", "deleted my account without warning", "refund still pending after 3 weeks",
    "the worst support I have ever dealt with", "sync is failing with an error", "cancelled my subscription",
    "billing is a scam", "outage again??", "their API returns 500 errors", "crashes every time I export",
]
QUESTIONS = [
    "how do I export my contacts", "does anyone know if it supports SSO", "anyone knows how to reset the password",
    "how to cancel the trial", "is there a way to merge accounts", "any idea why invoices are missing",
    "does anyone use it with Zapier", "what is the best alternative", "can someone help me with the setup",
    "how do I contact a human", "where is the dark mode setting", "anyone else seeing login errors",
]
PRAISE = [
    "is honestly great", "saved our team hours", "has the best onboarding", "support fixed it in ten minutes",
    "I love the new dashboard", "works perfectly on my phone", "is awesome for small teams",
]
NEUTRAL = [
    "released a new version", "announced new pricing", "is hosting a webinar on Thursday", "integrates with Slack now",
    "was mentioned on a podcast", "has a new logo", "posted their public roadmap", "is hiring engineers",
    "runs on Postgres under the hood", "opened an office in Berlin", "raised a Series B", "sponsors the meetup",
    "published a case study", "is on the front page", "has a free tier", "shipped an Android widget",
]
NOISE = [
    "we are hiring, see the job offer", "job offer: senior engineer", "partnered with", "switched from",
    "moved to", "comparing it with", "migrating away from", "wrote a blog post about",
]
FILLER = [
    "to be fair", "honestly", "for what it's worth", "just my two cents", "at work", "this week", "again",
    "since Monday", "on the free plan", "with the enterprise tier", "after the last release", "in production",
    "on Android", "on iOS", "on my MacBook", "in Chrome", "for our agency", "for a client", "thanks in advance",
    "any help appreciated", "edit: typo", "UPDATE: still happening", "lol", "smh", "tbh", "FWIW",
    "the dot com era", "polka dot dress",
]
FANCY_FILLER = [
    "the café downstairs has better wifi", "naïve question maybe", "my résumé is due", "Zürich office",
    "São Paulo team", "über annoying", "Łódź colleagues", "Ærø trip", "coöperation matters", "señor", "Straße",
    "ﬁnally", "Ｆｕｌｌｗｉｄｔｈ", "中文用户", "日本語の投稿", "it’s fine", "“support”", "don’t ask",
]
EMOTICONS = [":)", ":(", ":/", "-_-", "^^", "+1", "<3", "xD", "(sigh)", "..."]
EMOJI = ["😡", "🙏", "😂", "🔥", "👍", "💸", "🤔", "😭", "✅", "❌", "🚀", "…", "—", "’", "“", "”"]
PUNCT = [".", "!", "?", "!!", "...", ",", ";", " -", ":", "?!"]


@dataclass(frozen=True)
class Brand:
    name: str       # as written in posts ("Lumière")
    word: str       # as written in rules ("lumière" or "zentrix")
    product: str    # "crm"
    tld: str        # "io"


def _syllable(rng: random.Random) -> str:
    return rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)


def brands(seed: int = 7, count: int = BRAND_UNIVERSE) -> list[Brand]:
    """`count` distinct made-up brands; the same for every rule-set size."""
    rng = random.Random(seed)
    common = {w for phrase in COMPLAINTS + QUESTIONS + PRAISE + NOISE + FILLER for w in phrase.lower().split()}
    common |= set(PRODUCTS) | set(TLDS) | {"dot", "job", "offer", "hiring", "refund", "broken", "help"}
    seen: set[str] = set()
    found: list[Brand] = []
    while len(found) < count:
        name = "".join(_syllable(rng) for _ in range(rng.choice([2, 2, 3]))) + rng.choice(_SUFFIXES)
        if len(name) < 5 or name in seen or name in common:
            continue
        seen.add(name)
        written = name.capitalize()
        if rng.random() < 0.06:  # a brand with an accent: rules and posts may write it either way
            i = rng.randrange(1, len(name))
            accented = name[:i] + rng.choice(_ACCENTED) + name[i + 1:]
            written = accented.capitalize()
            name = accented if rng.random() < 0.5 else name
        found.append(Brand(written, name, rng.choice(PRODUCTS), rng.choice(TLDS)))
    return found


# --- rules ------------------------------------------------------------------------------

def _rule_queries(b: Brand, rng: random.Random) -> list[tuple[str, str, tuple[str, ...], str]]:
    """(id suffix, query, labels, severity) for one brand: RULES_PER_BRAND of them."""
    w, p, tld = b.word, b.product, b.tld
    templates = [
        ("complaint", f'{w} (broken OR refund OR "never respond*" OR crash*) -"job offer"', ("complaint",), "high"),
        ("question", f'{w} ("how do i" OR "does anyone" OR "anyone know*" OR "how to" OR help) -hiring', ("question",), "medium"),
        ("outage", f'title:{w} (down OR outage OR "not working" OR error*)', ("outage",), "critical"),
        ("product-bug", f'"{w} {p}" (bug OR crash* OR error* OR slow) -source:hackernews', ("bug",), "medium"),
        ("churn", f'({w} OR {w}.{tld}) ("switched from" OR "switching from" OR cancel* OR alternative* OR "away from") type:post|comment', ("churn",), "high"),
        ("bad-review", f'{w} (refund OR scam OR "worst support" OR billed) type:review rating:<=2', ("complaint", "review"), "high"),
        ("praise", f'{w} (love OR great OR awesome OR perfect*) -(broken OR refund OR scam) lang:en', ("praise",), "low"),
        ("domain", f'{w}.{tld} -site:{w}.{tld} (down OR "not working" OR *crash*)', ("mention",), "low"),
        ("support", f'("{w} support" OR "@{w}") (never OR still OR "no response") -source:g2', ("complaint",), "high"),
        ("billing", f'{w}* (charged OR "double billed" OR invoice*) NOT "job offer"', ("billing",), "medium"),
    ]
    first = templates[:2]
    rest = templates[2:]
    rng.shuffle(rest)
    return first + rest[: RULES_PER_BRAND - 2]


def rule_packs(n_rules: int, seed: int = 11, per_pack: int = 500) -> list[RulePack]:
    """`n_rules` rules over the first n_rules/5 brands, in packs of `per_pack` rules."""
    rng = random.Random(seed)
    universe = brands()
    rules: list[Rule] = []
    i = 0
    while len(rules) < n_rules:
        b = universe[i]
        for suffix, query, labels, severity in _rule_queries(b, rng):
            if len(rules) == n_rules:
                break
            rules.append(Rule(id=f"b{i}-{suffix}", query=query, labels=labels, severity=severity,
                              reply_within=timedelta(hours=2) if severity in ("high", "critical") else None))
        i += 1
    return [RulePack(name=f"pack{k // per_pack}", rules=tuple(rules[k:k + per_pack])) for k in range(0, len(rules), per_pack)]


def pack_yaml(pack: RulePack) -> str:
    """A rule pack as the YAML file an admin would write."""
    lines = ["rules:"]
    for rule in pack.rules:
        query = rule.query.replace("'", "''")
        lines.append(f"  - id: {rule.id}")
        lines.append(f"    query: '{query}'")
        lines.append(f"    labels: [{', '.join(rule.labels)}]")
        lines.append(f"    severity: {rule.severity}")
        if rule.reply_within:
            lines.append(f"    reply_within: {int(rule.reply_within.total_seconds()) // 60}m")
    return "\n".join(lines) + "\n"


# --- posts ------------------------------------------------------------------------------

SOURCES = ["reddit", "hackernews", "rss", "g2", "x", "trustpilot"]
KIND_BY_SOURCE = {"g2": "review", "trustpilot": "review", "hackernews": "comment", "reddit": "post", "rss": "post", "x": "post"}


def _zipf_index(rng: random.Random, n: int) -> int:
    """Popular brands get mentioned far more often than the long tail."""
    return min(n - 1, int(n ** rng.random()) - 1)


def _mention_of(b: Brand, rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.50:
        return b.name
    if roll < 0.62:
        return f"{b.name} {b.product.upper() if len(b.product) <= 3 else b.product}"
    if roll < 0.70:
        return f"@{b.word}"
    if roll < 0.76:
        return f"#{b.word}"
    if roll < 0.84:
        return rng.choice([f"{b.word}.{b.tld}", f"{b.word}[.]{b.tld}", f"{b.word} dot {b.tld}", f"{b.word}(dot){b.tld}"])
    if roll < 0.90:
        return f"{b.name}'s"
    if roll < 0.95:
        return f"{b.name} support"
    return b.name.upper()


def _sentence(rng: random.Random, about: str) -> str:
    kind = rng.random()
    if kind < 0.15:
        body = f"{about} {rng.choice(COMPLAINTS)}"
    elif kind < 0.27:
        body = f"{rng.choice(QUESTIONS).capitalize()} in {about}"
    elif kind < 0.37:
        body = f"{about} {rng.choice(PRAISE)}"
    elif kind < 0.47:
        body = f"{rng.choice(NOISE).capitalize()} {about}"
    elif kind < 0.55:
        body = f"{rng.choice(FILLER).capitalize()}, {about} {rng.choice(COMPLAINTS + PRAISE)}"
    else:
        body = f"{about} {rng.choice(NEUTRAL)}"
    return body + rng.choice(PUNCT)


def _url(rng: random.Random, b: Brand | None) -> str:
    host = f"{b.word}.{b.tld}" if b and rng.random() < 0.5 else rng.choice(
        ["example.com", "news.ycombinator.com", "www.reddit.com", "medium.com", "github.com", "status.io"])
    path = "/".join(rng.choice(["blog", "status", "r", "crm", "post", "2024", "help", "p", "issues"]) for _ in range(2))
    query = rng.choice(["", "", "?utm_source=twitter&utm_medium=social", "?ref=hn", f"?id={rng.randrange(10**6)}"])
    return f"https://{host}/{path}{query}"


def posts(count: int, seed: int = 42, n_brands: int = BRAND_UNIVERSE, length: int = 300,
          start: datetime | None = None) -> list[Mention]:
    """`count` posts of about `length` characters each."""
    rng = random.Random(seed)
    universe = brands()[:n_brands]
    start = start or datetime(2026, 11, 20, tzinfo=timezone.utc)
    out: list[Mention] = []
    for i in range(count):
        source = rng.choice(SOURCES)
        # Most posts name a brand (monitors push the brand query down to the
        # source); popular brands far more often than the long tail.
        mentioned = [universe[_zipf_index(rng, len(universe))] for _ in range(rng.choice([0, 1, 1, 1, 1, 2, 2, 3]))]
        fancy = rng.random() < FANCY_SHARE  # curly quotes, emoji, accents, CJK
        filler, emoji = (FILLER + FANCY_FILLER, EMOJI) if fancy else (FILLER, EMOTICONS)
        parts: list[str] = []
        size = 0
        while size < length:
            r = rng.random()
            if r < 0.40 and mentioned:
                b = rng.choice(mentioned)
                piece = _sentence(rng, _mention_of(b, rng))
            elif r < 0.55:
                piece = _sentence(rng, rng.choice(["it", "the app", "this tool", "our vendor", "their team"]))
            elif r < 0.80:
                piece = rng.choice(filler) + rng.choice(PUNCT)
            elif r < 0.90:
                piece = rng.choice(emoji)
            else:
                piece = _url(rng, rng.choice(mentioned) if mentioned else None)
            parts.append(piece)
            size += len(piece) + 1
        text = " ".join(parts)[: length + 40]
        b0 = mentioned[0] if mentioned else universe[-1 - rng.randrange(100)]  # an unwatched brand
        about = _mention_of(b0, rng) if mentioned else rng.choice(["Question", "Rant", "PSA", "Weekly thread"])
        title = "" if source in ("x", "hackernews") and rng.random() < 0.7 else _sentence(rng, about)[:90]
        out.append(Mention(
            source=source,
            external_id=f"{source}-{seed}-{i}",
            url=f"https://{source}.example/{seed}/{i}" if rng.random() < 0.8 else f"https://{b0.word}.{b0.tld}/community/{seed}-{i}",
            author=rng.choice(["jane_doe", "u/bob", "@carol", "dave", b0.word, f"{b0.word}_support", "eve"]),
            title=title,
            text=text,
            created_at=start - timedelta(seconds=i),
            kind=KIND_BY_SOURCE[source],  # type: ignore[arg-type]
            rating=float(rng.randint(1, 5)) if KIND_BY_SOURCE[source] == "review" else None,
            language=rng.choice(["en", "en-US", "de", None, "fr", "en_GB"]),
            site=rng.choice(["", "", "r/crm", "r/sysadmin", f"{b0.word}.{b0.tld}", "news.ycombinator.com"]),
        ))
    return out
