"""The reddit connector (praw) against the fake Reddit API."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
from pydantic import ValidationError

from earful.connectors import load
from earful.connectors.base import ConnectorContext, ConnectorError
from earful.connectors.pushdown import compile_query
from earful.connectors.reddit import RedditConnector, RedditOptions, thing_mention
from earful.core import Mention
from earful.sandbox.reddit import RedditServer
from earful.sandbox.server import Response

from .deploy import Deployment, acme_rules, write_deployment

CLIENT_ID, CLIENT_SECRET = "test-app-id", "test-app-secret-4f9a"
T = time.time()
DAY = 86400.0


@pytest.fixture
def reddit() -> Iterator[RedditServer]:
    with RedditServer(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, accounts={"acme_support": "hunter2-pw"}) as fake:
        yield fake  # type: ignore[misc]


def connector(fake: RedditServer, query: str | None = 'acme OR "acme crm"', *, now: float | None = None,
              brands: tuple[str, ...] = ("acme_official", "acme_support"), **options: Any) -> RedditConnector:
    opts = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "base_url": fake.url, "retries": 0, **options}
    context = ConnectorContext(monitor="reddit-test", query=query, brand_accounts={"reddit": brands},
                               now=datetime.fromtimestamp(now or T, timezone.utc))
    return RedditConnector(RedditOptions(**opts), context)


def gets(fake: RedditServer, path: str | None = None) -> list[dict[str, str]]:
    return [{k: v[-1] for k, v in r.query.items()} for r in fake.requests
            if r.method == "GET" and (path is None or r.path.rstrip("/") == path)]


def ids(mentions: list[Mention]) -> list[str]:
    return [m.external_id for m in mentions]


def test_registry_and_lazy_imports() -> None:
    assert load("reddit") is RedditConnector
    code = "import sys, earful.connectors.reddit; print(sorted({'praw', 'prawcore', 'requests'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_options_validate_and_hide_secrets() -> None:
    opts = RedditOptions(client_id="id", client_secret="s3cr3t-value", subreddits=["r/CRM", "/r/sales/", "crm", "CRM"],
                         username="u/acme_support", password="pw-s3cr3t", first_run_lookback="12h")
    assert opts.subreddits == ["CRM", "sales", "crm"] and opts.username == "acme_support"
    assert opts.first_run_lookback == timedelta(hours=12)
    assert "s3cr3t" not in repr(opts) and "s3cr3t" not in str(opts.model_dump())
    with pytest.raises(ValidationError, match="not a subreddit"):
        RedditOptions(client_id="id", client_secret="s", subreddits=["crm sales"])
    with pytest.raises(ValidationError, match="go together"):
        RedditOptions(client_id="id", client_secret="s", username="acme_support")
    with pytest.raises(ValidationError):
        RedditOptions(client_id="id", client_secret="s", max_pages=11)
    with pytest.raises(ValidationError):
        RedditOptions(client_id="id", client_secret="s", subredits=["crm"])  # typo
    with pytest.raises(ValidationError):
        RedditOptions(client_secret="s")  # the app id is required


@pytest.mark.parametrize("query, sent", [
    ('acme OR "acme crm"', '(acme OR "acme crm")'),
    ("acme broken OR refund", "acme AND (broken OR refund)"),
    ('acme (broken OR refund OR "never respond*") -"job offer"', "acme"),
    ("site:r/crm acme author:u/jdoe", "subreddit:crm AND acme AND author:jdoe"),
    ('title:"acme crm" outage lang:en', 'title:"acme crm" AND outage'),
    ("acme AND OR", 'acme AND "OR"'),
])
def test_query_compiles_to_reddit_search(query: str, sent: str) -> None:
    assert compile_query(query, "reddit") == sent


def test_unsearchable_query_fails_before_any_request(reddit: RedditServer) -> None:
    with pytest.raises(ConnectorError, match="set `search`"):
        connector(reddit, "acme OR -spam").fetch(None)
    with pytest.raises(ConnectorError, match="nothing to watch"):
        connector(reddit, None).fetch(None)
    assert reddit.requests == []


# -- cursor ---------------------------------------------------------------------------------


def test_first_run_reads_the_lookback_window_of_every_stream(reddit: RedditServer) -> None:
    reddit.add_post("crm", title="Acme CRM in 2019", created_utc=T - 3 * DAY)
    post = reddit.add_post("crm", title="Acme CRM export broken?", author="jdoe", created_utc=T - 3600)
    other = reddit.add_post("sales", title="Cold email openers", created_utc=T - 1800)
    comment = reddit.add_comment(post["name"], body="same for us", author="ann", created_utc=T - 600)
    result = connector(reddit, subreddits=["crm", "sales"]).fetch(None)
    assert {m.external_id for m in result.mentions} == {post["name"], comment["name"], other["name"]}
    assert result.requests == 4  # token + search + new + comments
    (search,) = gets(reddit, "/search")
    assert search == {"q": '(acme OR "acme crm")', "sort": "new", "t": "all", "type": "link", "include_over_18": "on",
                      "limit": "100", "raw_json": "1"}
    assert gets(reddit, "/r/crm+sales/new") and gets(reddit, "/r/crm+sales/comments")
    assert set(result.cursor["streams"]) == {"search", "new:crm+sales", "comments:crm+sales"}
    assert result.cursor["streams"]["comments:crm+sales"]["newest"] == comment["name"]


def test_idle_poll_costs_one_request_per_stream(reddit: RedditServer) -> None:
    reddit.add_post("crm", title="Acme CRM 5.2", created_utc=T - 60)
    hub = connector(reddit, subreddits=["crm"])
    first = hub.fetch(None)
    before = len(reddit.requests)
    idle = hub.fetch(first.cursor)
    assert idle.mentions == [] and idle.requests == 3 == len(reddit.requests) - before
    assert idle.cursor == first.cursor
    assert all("after" not in g for g in gets(reddit)[-3:])


def test_new_items_across_three_ticks_are_returned_exactly_once(reddit: RedditServer) -> None:
    hub = connector(reddit, subreddits=["crm"])
    seen: list[str] = []
    cursor = None
    expected: list[str] = []
    for tick in range(3):
        post = reddit.add_post("crm", title=f"Acme question {tick}", created_utc=T - 300 + tick * 60)
        comment = reddit.add_comment(post["name"], body=f"reply {tick}", created_utc=T - 290 + tick * 60)
        expected += [post["name"], comment["name"]]
        result = hub.fetch(cursor)
        seen += ids(result.mentions)
        cursor = result.cursor
    assert sorted(seen) == sorted(expected) and len(seen) == len(set(seen))


def test_three_day_outage_pages_back_to_the_cursor(reddit: RedditServer) -> None:
    hub = connector(reddit, subreddits=["crm"], now=T - 3 * DAY)
    old = reddit.add_post("crm", title="Acme before the outage", created_utc=T - 3 * DAY - 60)
    cursor = hub.fetch(None).cursor
    posts = [reddit.add_post("crm", title=f"Acme post {n}", created_utc=T - 3 * DAY + n * 900)["name"] for n in range(250)]
    comments = [reddit.add_comment(posts[n % 250], body=f"comment {n}", created_utc=T - 3 * DAY + n * 700 + 30)["name"]
                for n in range(320)]
    before = len(reddit.requests)
    result = connector(reddit, subreddits=["crm"]).fetch(cursor)
    got = ids(result.mentions)
    assert sorted(got) == sorted(posts + comments) and old["name"] not in got and len(got) == len(set(got))
    assert [m.created_at for m in result.mentions] == sorted(m.created_at for m in result.mentions)  # oldest first
    afters = [r.arg("after") for r in reddit.requests[before:] if r.method == "GET"]
    assert afters.count(None) == 3  # one first page per stream, then `after` pages
    # search (250 posts: 3 pages), new (3 pages), comments (320: 4 pages), each stopping at the cursor,
    # plus a token for the new connector
    assert result.requests == len(reddit.requests) - before == 1 + 3 + 3 + 4
    assert result.notes == []
    assert hub.fetch(result.cursor).mentions == []


def test_outage_longer_than_the_listing_says_what_was_missed(reddit: RedditServer) -> None:
    hub = connector(reddit, None, subreddits=["crm"], now=T - 5 * DAY)
    reddit.add_post("crm", title="before", created_utc=T - 5 * DAY - 10)
    cursor = hub.fetch(None).cursor
    for n in range(1100):
        reddit.add_post("crm", title=f"busy {n}", created_utc=T - 4 * DAY + n * 60)
    result = connector(reddit, None, subreddits=["crm"]).fetch(cursor)
    assert len([m for m in result.mentions if m.kind == "post"]) == 1000  # Reddit serves no more
    assert any("only the newest 1000" in note for note in result.notes)


def test_max_pages_cap_is_reported(reddit: RedditServer) -> None:
    hub = connector(reddit, None, subreddits=["crm"], now=T - DAY)
    cursor = hub.fetch(None).cursor
    for n in range(30):
        reddit.add_post("crm", title=f"post {n}", created_utc=T - 3600 + n)
    result = connector(reddit, None, subreddits=["crm"], page_size=10, max_pages=2).fetch(cursor)
    assert len(result.mentions) == 20 and any("raise `max_pages`" in n for n in result.notes)


def test_search_index_lag_is_caught_by_the_overlap_without_repeats(reddit: RedditServer) -> None:
    hub = connector(reddit)
    first = reddit.add_post("crm", title="Acme is down", created_utc=T - 600)
    late = reddit.add_post("sales", title="Acme refund?", created_utc=T - 500, index_delay=10 * DAY)  # not searchable yet
    newer = reddit.add_post("crm", title="Acme fixed", created_utc=T - 400)
    one = hub.fetch(None)
    assert ids(one.mentions) == [first["name"], newer["name"]]
    reddit.index_now(late["name"])  # indexed after the cursor moved past it
    two = hub.fetch(one.cursor)
    assert ids(two.mentions) == [late["name"]]
    assert hub.fetch(two.cursor).mentions == []


def test_deleted_cursor_item_does_not_blind_the_stream(reddit: RedditServer) -> None:
    """A `before=<fullname>` cursor would return nothing forever once that post is gone."""
    hub = connector(reddit, None, subreddits=["crm"])
    post = reddit.add_post("crm", title="newest", created_utc=T - 100)
    cursor = hub.fetch(None).cursor
    reddit.remove(post["name"])
    reddit.things.pop(post["name"])  # gone from listings altogether
    fresh = reddit.add_post("crm", title="after", created_utc=T - 50)
    assert ids(hub.fetch(cursor).mentions) == [fresh["name"]]


# -- mapping ------------------------------------------------------------------------------------


def test_self_post_mapping(reddit: RedditServer) -> None:
    post = reddit.add_post("CRM", title="How do I export deals from Acme CRM?", author="sales_ops_kim",
                           selftext="Our export is **empty**.\n\nSee https://status.acme.example & <details>",
                           created_utc=T - 120, score=7)
    (mention,) = connector(reddit).fetch(None).mentions
    assert mention == Mention(
        source="reddit",
        external_id=post["name"],
        url=f"https://www.reddit.com/r/CRM/comments/{post['id']}/how_do_i_export_deals_from_acme_crm/",
        author="sales_ops_kim",
        title="How do I export deals from Acme CRM?",
        text="Our export is **empty**.\n\nSee https://status.acme.example & <details>",
        created_at=datetime.fromtimestamp(T - 120, timezone.utc),
        thread_id=post["name"],
        kind="post",
        site="r/CRM",
        brand_replied=False,  # num_comments == 0: the listing itself shows nobody answered yet
    )
    assert mention.raw["num_comments"] == 0 and mention.raw["score"] == 7 and mention.raw["state"] == ""


def test_link_post_shares_its_target_and_brand_accounts_are_flagged(reddit: RedditServer) -> None:
    link = reddit.add_post("crm", title="Acme CRM raises $60M", url="https://news.techwire.example/acme-crm-series-c",
                           created_utc=T - 300)
    reddit.add_comment(link["name"], body="congrats", created_utc=T - 200)
    own = reddit.add_post("crm", title="Acme CRM 5.2.1 released", author="Acme_Official", created_utc=T - 100)
    by_id = {m.external_id: m for m in connector(reddit).fetch(None).mentions}
    shared = by_id[link["name"]]
    assert shared.link_url == "https://news.techwire.example/acme-crm-series-c" and shared.text == ""
    assert shared.raw["domain"] == "news.techwire.example" and shared.brand_replied is None
    assert by_id[own["name"]].author_is_brand and not shared.author_is_brand


def test_comment_mapping_knows_its_thread_and_parent(reddit: RedditServer) -> None:
    post = reddit.add_post("sales", title="Acme or Globex?", created_utc=T - 900)
    parent = reddit.add_comment(post["name"], body="Acme, but support is slow", author="ann", created_utc=T - 800)
    child = reddit.add_comment(parent["name"], body="How slow? [details](https://example.org/x)", author="bob",
                               created_utc=T - 700)
    by_id = {m.external_id: m for m in connector(reddit, None, subreddits=["sales"]).fetch(None).mentions}
    mention = by_id[child["name"]]
    assert mention.kind == "comment" and mention.title == "Acme or Globex?"
    assert mention.thread_id == post["name"] and mention.parent_id == parent["name"]
    assert mention.text == "How slow? details" and mention.raw["link_title"] == "Acme or Globex?"
    assert mention.url == f"https://www.reddit.com/r/sales/comments/{post['id']}/acme_or_globex/{child['id']}/"
    assert by_id[parent["name"]].parent_id == post["name"]


def test_deleted_removed_and_edited_content(reddit: RedditServer) -> None:
    post = reddit.add_post("crm", title="Acme refund scam??", selftext="they took my money", created_utc=T - 900)
    gone = reddit.add_post("crm", title="Acme broke my import", selftext="details", created_utc=T - 850)
    deleted = reddit.add_comment(post["name"], body="me too", author="ann", created_utc=T - 800)
    removed = reddit.add_comment(post["name"], body="spam link", author="spammer", created_utc=T - 700)
    edited = reddit.add_comment(post["name"], body="acme is slow", author="bob", created_utc=T - 600)
    reddit.remove(post["name"])
    reddit.delete(gone["name"])
    reddit.delete(deleted["name"])
    reddit.remove(removed["name"])
    reddit.edit(edited["name"], "acme is slow (edit: fixed now)", at=T - 60)
    by_id = {m.external_id: m for m in connector(reddit, None, subreddits=["crm"]).fetch(None).mentions}
    removed_post = by_id[post["name"]]
    assert removed_post.title == "Acme refund scam??" and removed_post.text == "" and removed_post.raw["state"] == "removed"
    assert removed_post.author != "[deleted]"  # a moderator removal keeps the author visible
    deleted_post = by_id[gone["name"]]
    assert deleted_post.author == "[deleted]" and deleted_post.text == "" and deleted_post.raw["state"] == "deleted"
    assert (by_id[deleted["name"]].author, by_id[deleted["name"]].text, by_id[deleted["name"]].raw["state"]) == ("[deleted]", "", "deleted")
    assert (by_id[removed["name"]].author, by_id[removed["name"]].text, by_id[removed["name"]].raw["state"]) == ("[deleted]", "", "removed")
    assert by_id[edited["name"]].text == "acme is slow (edit: fixed now)"
    assert by_id[edited["name"]].raw["edited_at"] == datetime.fromtimestamp(int(T - 60), timezone.utc).isoformat()
    assert not any(m.author_is_brand for m in by_id.values())


def test_listing_as_recorded_with_edited_timestamps_and_legacy_fields() -> None:
    """Shapes from praw's cassettes: a 2016 search hit with `edited` as a float and `?ref=` in the permalink."""
    child = {"kind": "t3", "data": {
        "domain": "self.redditdev", "subreddit": "redditdev", "selftext_html": "<!-- SC_OFF --><div class=\"md\"><h1>solved</h1>\n\n<p>Problem solved.</p>\n</div><!-- SC_ON -->",
        "selftext": "# solved\n\nProblem solved.", "id": "3gpbiu", "author": "nutrecht", "name": "t3_3gpbiu",
        "edited": 1439447718.0, "is_self": True, "permalink": "/r/redditdev/comments/3gpbiu/prawoauth2util_problem/?ref=search_posts",
        "url": "https://www.reddit.com/r/redditdev/comments/3gpbiu/prawoauth2util_problem/", "title": "prawoauth2util problem",
        "created_utc": 1439370514.0, "num_comments": 21, "distinguished": None}}
    mention = thing_mention(child, {"acme_support"})
    assert mention.url == "https://www.reddit.com/r/redditdev/comments/3gpbiu/prawoauth2util_problem/"
    assert mention.text == "solved\n\nProblem solved." and mention.link_url == ""
    assert mention.raw["edited_at"] == "2015-08-13T06:35:18+00:00" and mention.brand_replied is None
    deleted = {"kind": "t1", "data": {"name": "t1_d7ltvl0", "author": "[deleted]", "body": "[deleted]", "link_id": "t3_52o2fl",
                                      "parent_id": "t3_52o2fl", "subreddit": "test", "created_utc": 1473989302.0,
                                      "body_html": "<div class=\"md\"><p>[deleted]</p>\n</div>", "edited": False}}
    comment = thing_mention(deleted, set())
    assert (comment.author, comment.text, comment.thread_id) == ("[deleted]", "", "t3_52o2fl")
    assert comment.url == "https://www.reddit.com/r/test/comments/52o2fl/_/d7ltvl0/"


def test_non_latin_text_survives_search_and_mapping(reddit: RedditServer) -> None:
    post = reddit.add_post("crm", title="Acme CRM не работает экспорт", selftext="エクスポートが空です。Acme サポートは？",
                           created_utc=T - 60)
    (mention,) = connector(reddit, 'acme OR "acme crm"').fetch(None).mentions
    assert mention.external_id == post["name"] and mention.title == "Acme CRM не работает экспорт"
    assert mention.text == "エクスポートが空です。Acme サポートは？"


def test_inbox_mentions_of_the_brand_account(reddit: RedditServer) -> None:
    post = reddit.add_post("sales", title="Best cold email openers?", created_utc=T - 600)
    mention_comment = reddit.add_comment(post["name"], body="does anyone know if u/acme_support can enable the sync?",
                                         author="dana", created_utc=T - 300)
    reddit.add_comment(post["name"], body="unrelated", created_utc=T - 200)
    hub = connector(reddit, None, username="acme_support", password="hunter2-pw")
    result = hub.fetch(None)
    (mention,) = result.mentions
    assert mention.external_id == mention_comment["name"] and mention.kind == "comment"
    assert mention.thread_id == post["name"] and mention.parent_id == post["name"]
    assert mention.raw["type"] == "username_mention" and mention.title == "Best cold email openers?"
    assert mention.url.endswith(f"/{mention_comment['id']}/")
    token_post = next(r for r in reddit.requests if r.path == "/api/v1/access_token")
    assert "grant_type=password" in token_post.body.decode() and "username=acme_support" in token_post.body.decode()
    assert list(result.cursor["streams"]) == ["mentions:acme_support"]
    assert hub.fetch(result.cursor).mentions == []


def test_wrong_password_names_the_account_not_the_password(reddit: RedditServer) -> None:
    with pytest.raises(ConnectorError) as caught:
        connector(reddit, None, username="acme_support", password="wrong-pw-123").fetch(None)
    message = str(caught.value)
    assert "reddit monitor 'reddit-test'" in message and "u/acme_support" in message and "password" in message
    assert "wrong-pw-123" not in message


# -- replies --------------------------------------------------------------------------------------


def thread(fake: RedditServer) -> dict[str, dict[str, Any]]:
    post = fake.add_post("crm", title="Acme export broken?", author="kim", created_utc=T - 3600)
    answered = fake.add_comment(post["name"], body="same here", author="pam", created_utc=T - 3000)
    answer = fake.add_comment(answered["name"], body="Fixed in 5.2.1, sorry!", author="Acme_Support", created_utc=T - 2400)
    later = fake.add_comment(answer["name"], body="thanks", author="pam", created_utc=T - 2000)
    ignored = fake.add_comment(post["name"], body="acme never answers me", author="bob", created_utc=T - 1800)
    return {"post": post, "answered": answered, "answer": answer, "later": later, "ignored": ignored}


def as_mention(hub: RedditConnector, fake: RedditServer, data: dict[str, Any]) -> Mention:
    thing = fake.things[data["name"]]
    child = {"kind": thing.kind, "data": fake.render(thing)}
    return thing_mention(child, hub.brand_names())


def test_replies_brand_answered_and_unanswered(reddit: RedditServer) -> None:
    items = thread(reddit)
    hub = connector(reddit)
    status = hub.replies(as_mention(hub, reddit, items["answered"]))
    assert status.answered is True and status.answered_by == "Acme_Support"
    assert status.answered_at == datetime.fromtimestamp(T - 2400, timezone.utc)
    assert status.url and status.url.endswith(f"/{items['answer']['id']}/")
    assert hub.replies(as_mention(hub, reddit, items["ignored"])).answered is False
    assert hub.replies(as_mention(hub, reddit, items["post"])).answered is True  # an answer anywhere below the post
    assert hub.replies(as_mention(hub, reddit, items["later"])).answered is False  # the answer is above, not below


def test_replies_follow_more_objects_and_continue_this_thread(reddit: RedditServer) -> None:
    reddit.tree_limit, reddit.depth_limit = 2, 3
    post = reddit.add_post("crm", title="Acme sync question", created_utc=T - 5000)
    for n in range(4):
        reddit.add_comment(post["name"], body=f"noise {n}", created_utc=T - 4900 + n)
    asker = reddit.add_comment(post["name"], body="how do I sync acme?", author="ann", created_utc=T - 4000)  # hidden behind `more`
    deep = asker
    for n in range(4):  # deeper than depth_limit: "continue this thread"
        deep = reddit.add_comment(deep["name"], body=f"level {n}", created_utc=T - 3900 + n)
    reddit.add_comment(deep["name"], body="Here's how: Settings > Sync", author="acme_official", created_utc=T - 3000)
    hub = connector(reddit)
    status = hub.replies(as_mention(hub, reddit, post))
    assert status.answered is True and status.answered_by == "acme_official"
    assert reddit.requests_to("/api/morechildren")  # the `more` object was expanded
    assert hub.replies(as_mention(hub, reddit, asker)).answered is True  # from the comment itself, past "continue"


def test_replies_unknown_when_more_comments_stay_unloaded(reddit: RedditServer) -> None:
    reddit.tree_limit = 1
    post = reddit.add_post("crm", title="Acme?", created_utc=T - 500)
    reddit.add_comment(post["name"], body="a", created_utc=T - 400)
    reddit.add_comment(post["name"], body="b", created_utc=T - 300)
    hub = connector(reddit, replace_more_limit=0)
    assert hub.replies(as_mention(hub, reddit, post)).answered is None  # could not look at everything
    assert connector(reddit).replies(as_mention(hub, reddit, post)).answered is False


def test_replies_unknown_on_errors_and_without_brand_accounts(reddit: RedditServer) -> None:
    items = thread(reddit)
    hub = connector(reddit)
    missing = Mention(source="reddit", external_id="t3_zzzzzz", kind="post", thread_id="t3_zzzzzz")
    assert hub.replies(missing).answered is None  # 404
    reddit.fail_next(Response(503, "<html>down</html>", {"Content-Type": "text/html"}))
    assert connector(reddit).replies(as_mention(hub, reddit, items["post"])).answered is None
    nobody = connector(reddit, brands=())
    assert nobody.replies(as_mention(nobody, reddit, items["post"])).answered is None
    assert hub.replies(Mention(source="hackernews", external_id="1")).answered is None


# -- failures ----------------------------------------------------------------------------------------


def warmed(fake: RedditServer) -> tuple[RedditConnector, dict[str, Any]]:
    """A connector that already holds a token, and its cursor (so the next request is a listing)."""
    fake.add_post("crm", title="Acme one", created_utc=T - 100)
    hub = connector(fake, subreddits=["crm"])
    return hub, hub.fetch(None).cursor


def test_rate_limit_fails_the_run_with_retry_after(reddit: RedditServer) -> None:
    hub, cursor = warmed(reddit)
    reddit.fail_next(reddit.too_many_requests(reset=420))
    with pytest.raises(ConnectorError) as caught:
        hub.fetch(cursor)
    assert caught.value.status == 429 and caught.value.retry_after == 420
    assert "reddit monitor 'reddit-test'" in str(caught.value) and "/search" in str(caught.value)


def test_praw_waits_when_reddit_says_the_window_is_used_up(reddit: RedditServer) -> None:
    hub, cursor = warmed(reddit)
    reddit.rate.update(remaining=0.0, used=600, reset=1)
    started = time.monotonic()
    hub.fetch(cursor)
    assert time.monotonic() - started >= 0.9  # prawcore slept until the reset instead of hammering


@pytest.mark.parametrize("response, problem", [
    (Response(200, b"<html><body>Our CDN is having a moment</body></html>", {"Content-Type": "text/html"}), "not JSON"),
    (Response(200, b'{"kind": "Listing", "data": {"children": [', {"Content-Type": "application/json"}), "not JSON"),
    (Response.json({"kind": "t2", "data": {}}), "expected a Listing"),
    (Response.json({"kind": "Listing", "data": {"children": [{"kind": "t3", "data": {"title": "no name"}}]}}), "fullname"),
])
def test_malformed_replies_are_clear_errors(reddit: RedditServer, response: Response, problem: str) -> None:
    hub, cursor = warmed(reddit)
    reddit.fail_next(response)
    with pytest.raises(ConnectorError, match=problem) as caught:
        hub.fetch(cursor)
    assert "reddit monitor 'reddit-test'" in str(caught.value)


def test_server_error_and_missing_subreddit(reddit: RedditServer) -> None:
    hub, cursor = warmed(reddit)
    reddit.fail_next(Response(502, "<html>bad gateway</html>", {"Content-Type": "text/html"}))
    with pytest.raises(ConnectorError, match="HTTP 502.*server error") as caught:
        hub.fetch(cursor)
    assert caught.value.status == 502
    reddit.fail_next(Response(302, b"", {"Location": "/subreddits/search?q=crmm"}))
    with pytest.raises(ConnectorError, match="does not exist"):
        hub.fetch(cursor)
    reddit.fail_next(Response.json({"reason": "private", "message": "Forbidden", "error": 403}, 403))
    with pytest.raises(ConnectorError, match="HTTP 403.*private"):
        hub.fetch(cursor)


def test_token_endpoint_outage_is_not_blamed_on_the_credentials(reddit: RedditServer) -> None:
    reddit.fail_next(Response(503, "<html>upstream connect error</html>", {"Content-Type": "text/html"}))
    with pytest.raises(ConnectorError, match="HTTP 503 .*; Reddit server error") as caught:
        connector(reddit, subreddits=["crm"]).fetch(None)
    assert "client_id" not in str(caught.value) and caught.value.status == 503


def test_revoked_app_credentials_name_monitor_and_source_but_no_secret(reddit: RedditServer) -> None:
    hub, cursor = warmed(reddit)
    reddit.revoke_all()
    with pytest.raises(ConnectorError) as caught:
        hub.fetch(cursor)
    message = str(caught.value)
    assert "reddit monitor 'reddit-test'" in message and "client_id" in message and caught.value.status == 401
    assert CLIENT_SECRET not in message and CLIENT_ID not in message


def test_timeout_is_honoured() -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    try:
        opts = RedditOptions(client_id="a", client_secret="b", base_url=f"http://127.0.0.1:{silent.getsockname()[1]}",
                             timeout=0.3, retries=0, subreddits=["crm"])
        started = time.monotonic()
        with pytest.raises(ConnectorError, match="timed out after 0.3s"):
            RedditConnector(opts, ConnectorContext(monitor="reddit-test")).fetch(None)
        assert time.monotonic() - started < 3
    finally:
        silent.close()


# -- the real pipeline -----------------------------------------------------------------------------------

def deployment(tmp_path: Path, fake: RedditServer) -> Deployment:
    return write_deployment(tmp_path, {
        "reddit-acme": {"connector": "reddit", "schedule": "*/5 * * * *", "query": "acme", "subreddits": ["crm"],
                        "client_id": "${EARFUL_TEST_REDDIT_ID}", "client_secret": "${EARFUL_TEST_REDDIT_SECRET}", "retries": 0,
                        "base_url": fake.url},
    }, acme_rules({"reddit": ["acme_official", "acme_support"]}),
        env={"EARFUL_TEST_REDDIT_ID": CLIENT_ID, "EARFUL_TEST_REDDIT_SECRET": CLIENT_SECRET})


def test_end_to_end_three_runs_and_a_three_day_outage_alert_each_match_once(
        tmp_path: Path, reddit: RedditServer, capsys: pytest.CaptureFixture[str]) -> None:
    deployed = deployment(tmp_path, reddit)
    real_now = datetime.now(timezone.utc)
    t0 = real_now - timedelta(days=4)  # the first three runs happen before a three-day outage
    base = t0.timestamp()
    broken = reddit.add_post("crm", title="Acme export broken", created_utc=base - 600)
    reddit.add_post("crm", title="Lunch ideas", created_utc=base - 500)
    reddit.add_post("crm", title="Acme 5.2 fixes the broken export", author="acme_official", created_utc=base - 400)
    first = deployed.tick(now=t0)
    assert first.monitors[0].ok, first.monitors[0].error
    question = reddit.add_comment(broken["name"], body="How do I roll back acme to 5.1?", created_utc=base + 100)
    second = deployed.tick(now=t0 + timedelta(minutes=5))
    assert second.monitors[0].ok and second.monitors[0].new_items == 1
    refund = reddit.add_post("crm", title="Acme refund please", created_utc=base + 400)
    deployed.tick(now=t0 + timedelta(minutes=10))
    expected = {broken["name"], question["name"], refund["name"]}
    assert sorted(deployed.alerted()) == sorted(f"reddit:{n}" for n in expected)  # delivered or held by flood control

    outage_start = base + DAY
    for n in range(240):  # three days, every 18 minutes: more than two pages of /new
        title = f"Acme outage again, day {n // 80 + 1} #{n}" if n % 12 == 0 else f"Pipeline review notes #{n}"
        post = reddit.add_post("crm", title=title, created_utc=outage_start + n * 1080)
        if n % 12 == 0:
            expected.add(post["name"])
    after_outage = deployed.tick()
    outcome = after_outage.monitors[0]
    assert outcome.ok and outcome.fetched == 240 and outcome.new_items == 240
    assert outcome.requests == 1 + 1 + 3 + 1  # token, search (20 hits), /new (3 pages), /comments
    assert sorted(deployed.alerted()) == sorted(f"reddit:{n}" for n in expected)
    idle = deployed.tick().monitors[0]
    assert idle.ok and idle.fetched == 0 and idle.requests == 1 + 3
    assert len(deployed.alerted()) == len(expected) == 23

    # a 429 fails only this run, leaves the cursor where it was and defers the monitor
    reddit.fail_next(reddit.too_many_requests(reset=120))
    assert deployed.failing_tick("reddit-acme", "429").get("defer_until")
    assert CLIENT_SECRET not in capsys.readouterr().out


# -- the fake itself speaks Reddit ---------------------------------------------------------------------------------


def test_fake_listing_shape_paging_and_escaping(reddit: RedditServer) -> None:
    import requests

    for n in range(3):
        reddit.add_post("crm", title=f"Acme <b>{n}</b> & co", created_utc=T - 100 + n)
    token = requests.post(f"{reddit.url}/api/v1/access_token", auth=(CLIENT_ID, CLIENT_SECRET),
                          data={"grant_type": "client_credentials"}, timeout=5)
    assert token.headers["Connection"] == "close" and token.json()["token_type"] == "bearer"
    auth = {"Authorization": f"bearer {token.json()['access_token']}"}
    first = requests.get(f"{reddit.url}/r/crm/new", params={"limit": 2, "raw_json": 1}, headers=auth, timeout=5).json()
    assert first["kind"] == "Listing" and [c["kind"] for c in first["data"]["children"]] == ["t3", "t3"]
    assert first["data"]["children"][0]["data"]["title"] == "Acme <b>2</b> & co"
    assert first["data"]["after"] == first["data"]["children"][-1]["data"]["name"] and first["data"]["before"] is None
    rest = requests.get(f"{reddit.url}/r/crm/new", params={"limit": 2, "after": first["data"]["after"]}, headers=auth,
                        timeout=5).json()
    assert rest["data"]["after"] is None and rest["data"]["children"][0]["data"]["title"] == "Acme &lt;b&gt;0&lt;/b&gt; &amp; co"
    denied = requests.get(f"{reddit.url}/r/crm/new", timeout=5)
    assert denied.status_code == 401 and "invalid_token" in denied.headers["www-authenticate"]
    assert requests.get(f"{reddit.url}/message/mentions", headers=auth, timeout=5).status_code == 403  # app-only token
