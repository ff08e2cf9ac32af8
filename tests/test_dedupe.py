"""Canonical URLs and text fingerprints: the keys that cluster copies of one item."""

import pytest

from earful.monitors.dedupe import canonical_url, text_fingerprint

SAME_AS_PLAIN = [
    "https://example.com/blog/acme-review",
    "http://example.com/blog/acme-review/",
    "https://www.example.com/blog/acme-review?utm_source=twitter&utm_medium=social",
    "https://m.example.com/blog/acme-review?fbclid=IwAR0abc",
    "https://example.com/blog/acme-review?gclid=xyz#comments",
    "https://example.com/blog/acme-review/amp/",
    "https://example.com/blog/acme-review.amp",
    "https://amp.example.com/blog/acme-review",
    "https://www.google.com/amp/s/example.com/blog/acme-review",
    "https://example-com.cdn.ampproject.org/c/s/example.com/blog/acme-review",
    "HTTPS://EXAMPLE.COM/blog/acme-review?utm_campaign=x&mc_cid=1",
    "https://example.com//blog/acme-review",
]


@pytest.mark.parametrize("url", SAME_AS_PLAIN)
def test_variants_share_one_canonical_url(url):
    assert canonical_url(url) == canonical_url(SAME_AS_PLAIN[0])


@pytest.mark.parametrize("other", [
    "https://example.com/blog/acme-review-2",
    "https://example.com/blog/acme-review?page=2",
    "https://other.example.org/blog/acme-review",
    "https://example.com/blog/Acme-Review",
])
def test_different_pages_stay_different(other):
    assert canonical_url(other) != canonical_url(SAME_AS_PLAIN[0])


def test_meaningful_query_parameters_are_kept_in_a_stable_order():
    assert canonical_url("https://news.ycombinator.com/item?id=1&x=2") == canonical_url("https://news.ycombinator.com/item?x=2&id=1")
    assert "id=1" in canonical_url("https://news.ycombinator.com/item?id=1")


def test_empty_and_non_http_urls():
    assert canonical_url("") == ""
    assert canonical_url("mailto:a@b.c") == "mailto:a@b.c"


def test_fingerprint_ignores_case_punctuation_markup_and_links():
    a = text_fingerprint("Acme CRM lost my data", "After the update, Acme CRM lost all my contacts! https://t.co/abc")
    b = text_fingerprint("acme crm lost my data.", "after the update acme crm lost all my contacts https://example.com/x")
    assert a and a == b


def test_fingerprint_is_accent_insensitive():
    assert text_fingerprint("Café Acme", "le café est fermé depuis trois jours, personne ne répond") == \
        text_fingerprint("Cafe Acme", "le cafe est ferme depuis trois jours, personne ne repond")


def test_short_texts_have_no_fingerprint():
    assert text_fingerprint("", "thanks!") == ""
    assert text_fingerprint("+1", "same here") == ""


def test_different_texts_differ():
    assert text_fingerprint("Acme CRM lost my data", "after the update acme lost all my contacts today") != \
        text_fingerprint("Acme CRM lost my data", "after the update acme lost all my invoices today")
