"""Delivery order: the most severe alert goes first, and a destination that works again gets its backlog at once."""

from __future__ import annotations

from datetime import timedelta

from earful.core import utcnow

from .deploy import write_deployment
from .support import CHANNEL, SLACK_ENV, atom, slack_destination

RULES = {
    "brand": {"name": "Acme", "accounts": {}},
    "rules": [
        {"id": "complaint", "query": "acme (broken OR refund)", "labels": ["complaint"], "severity": "high"},
        {"id": "praise", "query": "acme (love OR lovely)", "labels": ["praise"], "severity": "low"},
    ],
}
PRAISE = ("1", "Acme is lovely", "I love acme")
COMPLAINT = ("2", "Acme is broken", "acme is broken, I want a refund")
NOW = utcnow().replace(microsecond=0)


def deploy(tmp_path, feeds, slack):
    return write_deployment(tmp_path, {"forum": {"connector": "rss", "url": "https://forum.example/latest.atom",
                                                 "base_url": feeds.url}},
                            RULES, destinations={"support": slack_destination(slack, max_retries=0)}, env=SLACK_ENV)


def posted_ids(slack):
    """The fixture ids of the posts alerted in the channel, in posting order."""
    texts = [message["text"] for message in slack.messages(CHANNEL)]
    return [eid for text in texts for eid, title, _ in (PRAISE, COMPLAINT) if title in text]


def test_the_most_severe_alert_is_delivered_first(tmp_path, feeds, slack):
    feeds.set_feed("/latest.atom", atom([PRAISE, COMPLAINT]))  # the praise is older in the feed
    report = deploy(tmp_path, feeds, slack).tick(NOW)
    assert report.delivery.delivered["support"] == 2
    assert posted_ids(slack) == ["2", "1"]


def test_a_destination_that_works_again_delivers_its_backed_off_alerts_in_the_same_run(tmp_path, feeds, slack):
    deployment = deploy(tmp_path, feeds, slack)
    feeds.set_feed("/latest.atom", atom([COMPLAINT]))
    slack.rate_limit_next(1, retry_after=600)
    first = deployment.tick(NOW)
    assert "support" in first.delivery.failed and posted_ids(slack) == []
    with deployment.store() as store:
        (row,) = store.outbox_rows("pending")
        assert row.next_attempt_at >= NOW + timedelta(minutes=9), "the complaint is backed off for ten minutes"

    feeds.set_feed("/latest.atom", atom([COMPLAINT, PRAISE]))
    second = deployment.tick(NOW + timedelta(minutes=1))  # Slack works again; only the new praise is due
    assert second.delivery.delivered["support"] == 2, "the complaint did not wait for its back-off"
    assert sorted(posted_ids(slack)) == ["1", "2"]
    with deployment.store() as store:
        assert {r.status for r in store.outbox_rows()} == {"delivered"}


def test_a_destination_still_failing_keeps_its_back_off(tmp_path, feeds, slack):
    deployment = deploy(tmp_path, feeds, slack)
    feeds.set_feed("/latest.atom", atom([COMPLAINT]))
    slack.rate_limit_next(1, retry_after=600)
    deployment.tick(NOW)
    feeds.set_feed("/latest.atom", atom([COMPLAINT, PRAISE]))
    slack.rate_limit_next(1, retry_after=600)
    second = deployment.tick(NOW + timedelta(minutes=1))
    assert "support" in second.delivery.failed and posted_ids(slack) == []
    with deployment.store() as store:
        assert [r.attempts for r in store.outbox_rows()] == [1, 1], "the backed-off complaint was not retried early"
