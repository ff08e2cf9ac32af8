"""`earful check --online` proves sources and destinations without posting; `earful test-alert` posts one test.

Every destination answers `verify()` against its sandbox fake in the real
wire format; disabled monitors are skipped (and said to be), by
`check --online` and by `run --dry-run`.
"""

from __future__ import annotations

from typing import Any

import pytest

from earful.alerts.base import DeliveryError, NotVerifiable
from earful.sandbox.github import GitHubServer
from earful.sandbox.jira import JiraServer
from earful.sandbox.slack import SlackServer
from earful.sandbox.webhook import WebhookReceiver
from earful.sandbox.zendesk import ZendeskServer

from .deploy import write_deployment
from .support import (
    CHANNEL,
    POSTS,
    RULES,
    SLACK_ENV,
    SLACK_TOKEN,
    atom,
    slack_destination,
)
from .test_cli import invoke
from .test_email import PASSWORD, USER, authenticator, serve  # noqa: F401  (serve is a fixture)
from .test_email import destination as email_destination
from .test_github_issues import destination as github_destination
from .test_jira import destination as jira_destination
from .test_zendesk import destination as zendesk_destination

FORUM = {"connector": "rss", "url": "https://forum.example/latest.atom"}


def deployment(tmp_path, feeds, slack, *, destinations: dict[str, Any] | None = None, disabled: bool = False):
    monitors = {"forum": {**FORUM, "base_url": feeds.url}}
    if disabled:
        monitors["old-forum"] = {**FORUM, "base_url": feeds.url, "enabled": False}
    return write_deployment(tmp_path, monitors, RULES, env=SLACK_ENV,
                            destinations=destinations or {"support": slack_destination(slack, max_retries=0)})


def posts(slack) -> list[dict[str, Any]]:
    return [r for r in slack.requests if r.path == "/api/chat.postMessage"]


# -- check --online ------------------------------------------------------------------------


def test_check_online_verifies_slack_without_posting(tmp_path, feeds, slack, capsys):
    feeds.set_feed("/latest.atom", atom(POSTS))
    deploy = deployment(tmp_path, feeds, slack)
    assert invoke("check", "--online", "--config", str(deploy.path)) == 0
    out = capsys.readouterr().out
    assert "support" in out and "bot earful in workspace earful demo" in out and f"#support ({CHANNEL})" in out
    called = [r.path for r in slack.requests]
    assert "/api/auth.test" in called and "/api/conversations.info" in called and not posts(slack)


@pytest.mark.parametrize("channel, error", [("C0NOSUCH001", "channel_not_found"), ("#nowhere", "no public channel named #nowhere")])
def test_check_online_fails_for_a_channel_the_bot_cannot_post_to(tmp_path, feeds, slack, capsys, channel, error):
    feeds.set_feed("/latest.atom", atom(POSTS))
    deploy = deployment(tmp_path, feeds, slack, destinations={"support": slack_destination(slack, channel=channel, max_retries=0)})
    assert invoke("check", "--online", "--config", str(deploy.path)) == 1
    out = capsys.readouterr().out
    assert "failed" in out and error in out and not posts(slack)


def test_check_online_fails_for_a_rejected_token_and_never_shows_it(tmp_path, feeds, capsys):
    feeds.set_feed("/latest.atom", atom(POSTS))
    with SlackServer(token="xoxb-another-token", channels={CHANNEL: "support"}) as other:
        deploy = deployment(tmp_path, feeds, other, destinations={"support": slack_destination(other, max_retries=0)})
        assert invoke("check", "--online", "--config", str(deploy.path)) == 1
    captured = capsys.readouterr()
    assert "invalid_auth" in captured.out and SLACK_TOKEN not in captured.out + captured.err


def test_check_online_names_a_channel_the_bot_is_not_in(tmp_path, feeds, capsys):
    feeds.set_feed("/latest.atom", atom(POSTS))
    with SlackServer(token=SLACK_TOKEN, channels={}) as slack:
        slack.add_channel("support", CHANNEL, member=False)
        deploy = deployment(tmp_path, feeds, slack)
        assert invoke("check", "--online", "--config", str(deploy.path)) == 1
    assert "the bot is not in #support" in capsys.readouterr().out


def test_check_online_skips_disabled_monitors_and_says_so(tmp_path, feeds, slack, capsys):
    feeds.set_feed("/latest.atom", atom(POSTS))
    deploy = deployment(tmp_path, feeds, slack, disabled=True)
    before = len(feeds.requests)
    assert invoke("check", "--online", "--config", str(deploy.path)) == 0
    out = capsys.readouterr().out
    assert "old-forum" in out and "skipped: enabled: false" in out
    assert len(feeds.requests) == before + 1, "only the enabled monitor contacted its source"


def test_a_webhook_is_reported_as_not_verifiable_without_failing_the_check(tmp_path, feeds, slack, capsys):
    feeds.set_feed("/latest.atom", atom(POSTS))
    with WebhookReceiver() as receiver:
        hook = {"type": "webhook", "url": receiver.hook_url, "secret": "${HOOK_SECRET}"}
        deploy = write_deployment(tmp_path, {"forum": {**FORUM, "base_url": feeds.url}}, RULES,
                                  env={**SLACK_ENV, "HOOK_SECRET": "s3cret-for-the-hook-0123456789"},
                                  destinations={"support": slack_destination(slack, max_retries=0), "hook": hook})
        assert invoke("check", "--online", "--config", str(deploy.path)) == 0
        assert receiver.events() == []
    out = capsys.readouterr().out
    assert "not verified" in out and "test-alert hook" in out


# -- verify() per destination, against its fake ----------------------------------------------


def test_jira_verify_reads_myself_and_the_project():
    with JiraServer() as server:
        assert jira_destination(server).verify() == "signed in as earful bot; project SUP (Support)"
        with pytest.raises(DeliveryError) as raised:
            jira_destination(server, project="NOPE").verify()
        assert "No project could be found" in str(raised.value) and raised.value.permanent
        with pytest.raises(DeliveryError) as raised:
            jira_destination(server, api_token="wrong-token").verify()
        assert "401" in str(raised.value) and "wrong-token" not in str(raised.value)
        assert not [r for r in server.requests if r.method != "GET"], "verify creates nothing"


def test_zendesk_verify_reads_users_me():
    with ZendeskServer() as server:
        assert "(agent)" in zendesk_destination(server).verify()
        with pytest.raises(DeliveryError) as raised:
            zendesk_destination(server, api_token="wrong-token").verify()
        assert "401" in str(raised.value)
        assert [r.path for r in server.requests if r.method == "GET"][0] == "/api/v2/users/me.json"


def test_github_verify_reads_the_repository():
    with GitHubServer() as server:
        assert "issues on" in github_destination(server).verify()
    with GitHubServer(issues_enabled=False) as server:
        with pytest.raises(DeliveryError) as raised:
            github_destination(server).verify()
        assert "issues are disabled" in str(raised.value)
    with GitHubServer() as server:
        with pytest.raises(DeliveryError) as raised:
            github_destination(server, repository="acme/elsewhere").verify()
        assert "404" in str(raised.value)


def test_email_verify_logs_in_and_sends_nothing(serve):  # noqa: F811 - the fixture imported above
    controller, mailbox = serve(authenticator=authenticator, auth_require_tls=False, auth_required=True)
    sink = email_destination(controller, username=USER, password=PASSWORD)
    assert f"as {USER}" in sink.verify()
    sink.close()
    with pytest.raises(DeliveryError) as raised:
        email_destination(controller, username=USER, password="wrong-" + PASSWORD).verify()
    assert raised.value.permanent and "wrong-" not in str(raised.value)
    assert mailbox.received == []


def test_webhook_verify_says_only_a_post_can_tell():
    from earful.alerts.webhook import WebhookDestination, WebhookOptions

    with WebhookReceiver() as receiver:
        hook = WebhookDestination("hooks", WebhookOptions(type="webhook", url=receiver.hook_url,
                                                          secret="s3cret-for-the-hook-0123456789"))
        with pytest.raises(NotVerifiable):
            hook.verify()
        assert receiver.requests == []


# -- test-alert --------------------------------------------------------------------------------


def test_test_alert_posts_one_alert_marked_as_a_test(tmp_path, feeds, slack, capsys):
    feeds.set_feed("/latest.atom", atom([]))
    deploy = deployment(tmp_path, feeds, slack)
    assert invoke("test-alert", "support", "--config", str(deploy.path)) == 0
    assert "sent a test alert to support" in capsys.readouterr().out
    (message,) = slack.messages(CHANNEL)
    assert "TEST ALERT" in message["text"]
    with deploy.store() as store:
        (row,) = store.outbox_rows()
        assert row.kind == "test" and row.status == "delivered"
    assert invoke("run", "--config", str(deploy.path)) == 0
    assert len(slack.messages(CHANNEL)) == 1, "the test alert went out exactly once"


def test_a_failed_test_alert_stays_queued_once(tmp_path, feeds, slack, capsys):
    deploy = deployment(tmp_path, feeds, slack)
    for _ in range(2):
        slack.rate_limit_next(1, retry_after=5)
        assert invoke("test-alert", "support", "--config", str(deploy.path)) == 1
        assert "rate limited" in capsys.readouterr().err
    assert invoke("test-alert", "support", "--config", str(deploy.path)) == 0
    assert len(slack.messages(CHANNEL)) == 1, "failed attempts did not pile up copies"
    with deploy.store() as store:
        assert [r.status for r in store.outbox_rows()] == ["delivered"]


def test_test_alert_to_an_unknown_destination_suggests_one(tmp_path, feeds, slack, capsys):
    deploy = deployment(tmp_path, feeds, slack)
    assert invoke("test-alert", "suport", "--config", str(deploy.path)) == 2
    assert "did you mean 'support'" in capsys.readouterr().err


# -- run --dry-run -------------------------------------------------------------------------------


def test_dry_run_skips_disabled_monitors_and_queues_nothing(tmp_path, feeds, slack, capsys):
    feeds.set_feed("/latest.atom", atom(POSTS))
    deploy = deployment(tmp_path, feeds, slack, disabled=True)
    assert invoke("run", "--dry-run", "--config", str(deploy.path)) == 0
    out = capsys.readouterr().out
    assert "skipped 1 disabled monitor(s) (enabled: false): old-forum" in out
    assert "✓ forum:" in out and "✓ old-forum" not in out
    assert "4 would alert" in out and "queued" not in out.replace("nothing queued", "")
    assert not (tmp_path / "state.db").exists() and not posts(slack)
