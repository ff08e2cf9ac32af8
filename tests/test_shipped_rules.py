"""The rule packs earful ships (the checkout's rules/example.yaml and the `earful init` template)
must alert on what their names promise: real review sentences that merely contain "help" or
"how to" are not questions (they made the old question rule fire on 12 of 12 G2/Capterra reviews)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from earful.core import Mention
from earful.rules.engine import Matcher
from earful.rules.models import RulePack

ROOT = Path(__file__).resolve().parent.parent


def packs() -> list[tuple[str, RulePack]]:
    texts = {
        "checkout": (ROOT / "rules" / "example.yaml").read_text(encoding="utf-8"),
        "init template": (resources.files("earful.monitors") / "templates" / "rules" / "example.yaml").read_text(encoding="utf-8"),
    }
    return [(name, RulePack(name="example", **YAML(typ="safe").load(text))) for name, text in texts.items()]


def labels(pack: RulePack, text: str, **fields: object) -> set[str]:
    mention = Mention(source=str(fields.pop("source", "reddit")), external_id="1", text=text, **fields)
    return {label for match in Matcher.compile([pack]).match(mention) for label in match.labels}


NOT_QUESTIONS = [
    # review sentences of the shape that fired the old rule (paraphrased from public G2/Capterra reviews)
    ("Example has a comprehensive help page and the onboarding was quick.", {"kind": "review", "source": "g2"}),
    ("If you don't know how to set something up in Example, their docs explain it well.", {"kind": "review", "source": "capterra"}),
    ("Example helped our team a lot; great support and easy reporting.", {"kind": "review", "source": "g2"}),
    ("We moved to Example last year and I can say it was worth it.", {}),
    ("Example shows you how to build a pipeline in ten minutes, nice demo.", {}),
]
QUESTIONS = [
    "How do I export contacts from Example to CSV?",
    "Does anyone know if Example supports SSO with Okta?",
    "Is there a way to undo a bulk delete in Example?",
    "Why does Example log me out every hour?",
    "Can I connect Example to our Postgres database?",
    "Anyone knows why the Example mobile app will not sync?",
]


@pytest.mark.parametrize("where, pack", packs())
@pytest.mark.parametrize("text, fields", NOT_QUESTIONS)
def test_statements_and_reviews_are_not_questions(where: str, pack: RulePack, text: str, fields: dict) -> None:
    assert "question" not in labels(pack, text, **fields), f"{where}: {text!r}"


@pytest.mark.parametrize("where, pack", packs())
@pytest.mark.parametrize("text", QUESTIONS)
def test_questions_are_questions(where: str, pack: RulePack, text: str) -> None:
    assert "question" in labels(pack, text), f"{where}: {text!r}"


def test_the_checkout_and_the_template_ship_the_same_pack() -> None:
    (_, checkout), (_, template) = packs()
    assert checkout == template
