"""Endpoints: URL normalisation, URL;ADDRESS pairs, discovery documents, choice and failover."""

from __future__ import annotations

import random
from typing import Any

import pytest

from gonka_cli.endpoints import (
    Endpoint,
    EndpointPool,
    normalize_base_url,
    parse_allowlist,
    parse_endpoint,
    parse_participants,
    usable_endpoints,
)
from gonka_cli.errors import HTTPClientError, UsageError
from tests import vectors as v

A1, A2, A3 = v.PUBKEY_ADDRESS, v.PRIVATE_KEY_ADDRESS, v.COSMOS_118_ADDRESS


@pytest.mark.parametrize(
    "given",
    [
        "http://h:8000",
        "http://h:8000/",
        "http://h:8000/v1",
        "http://h:8000/v1/",
        " http://h:8000/v1/chat/completions ",
    ],
)
def test_base_url_normalised_without_double_v1(given: str) -> None:
    """Every spelling of a node URL becomes .../v1, never /v1/v1."""
    assert normalize_base_url(given) == "http://h:8000/v1"


@pytest.mark.parametrize("bad", ["h:8000", "ftp://h", "http://", "http://h/v1?x=1"])
def test_bad_urls_refused(bad: str) -> None:
    """Only http(s) URLs with a host and no query are base URLs."""
    with pytest.raises(UsageError):
        normalize_base_url(bad)


def test_endpoint_pairs_parse_like_the_sdks() -> None:
    """`URL;ADDRESS` gives both; a bare URL has no address yet."""
    assert parse_endpoint(f"http://h:1;{A1}") == Endpoint("http://h:1/v1", A1)
    assert parse_endpoint("https://h/v1") == Endpoint("https://h/v1", "")
    with pytest.raises(UsageError):
        parse_endpoint("http://h:1;gonka1notanaddress")


def participants_document() -> dict[str, Any]:
    def entry(address: str, url: str, models: list[str]) -> dict[str, Any]:
        return {"index": address, "inference_url": url, "models": models, "weight": 5}

    return {
        "active_participants": {
            "participants": [
                entry(A1, "http://a:1", ["m1"]),
                entry(A2, "http://b:2", ["m1", "m2"]),
                entry(A3, "http://c:3", ["m2"]),
                {"index": "", "inference_url": "http://d:4"},
            ]
        },
        "excluded_participants": [{"address": A3, "reason": "missed PoC"}],
    }


def test_discovery_skips_excluded_and_applies_no_empty_allowlist() -> None:
    """Excluded participants and ones without an address are unusable; empty allowlist = all."""
    participants = parse_participants(participants_document(), parse_allowlist({}))
    assert [p.usable for p in participants] == [True, True, False, False]
    assert participants[2].reason == "missed PoC"
    assert usable_endpoints(participants, None) == [
        Endpoint("http://a:1/v1", A1),
        Endpoint("http://b:2/v1", A2),
    ]


def test_discovery_applies_a_non_empty_allowlist_and_the_model() -> None:
    """A non-empty allowlist keeps only listed TAs; the model keeps only those serving it."""
    params = {"params": {"transfer_agent_access_params": {"allowed_transfer_addresses": [A2]}}}
    participants = parse_participants(participants_document(), parse_allowlist(params))
    assert [p.allowed for p in participants[:3]] == [False, True, False]
    assert usable_endpoints(participants, "m2") == [Endpoint("http://b:2/v1", A2)]
    everyone = parse_participants(participants_document())
    assert usable_endpoints(everyone, "m2") == [Endpoint("http://b:2/v1", A2)]


def pool() -> tuple[EndpointPool, list[Endpoint], list[float]]:
    clock = [100.0]
    endpoints = [Endpoint(f"http://{name}/v1", A1) for name in "abc"]
    rng = random.Random(1)  # noqa: S311  # fixed order for the test, no secrets
    return EndpointPool(endpoints, rng=rng, now=lambda: clock[0]), endpoints, clock


def test_requests_start_round_robin_and_fail_over_in_order() -> None:
    """Each request starts one further along; failover visits the following endpoints."""
    chooser, endpoints, _ = pool()
    first = chooser.start(endpoints)
    second = chooser.start(endpoints)
    assert endpoints.index(second) == (endpoints.index(first) + 1) % 3
    following = chooser.after(endpoints, first)
    assert following == (second, 0.0)


def test_cooling_endpoints_are_skipped_until_all_cool() -> None:
    """A 429'd endpoint is skipped; when every one cools, the soonest is given with its wait."""
    chooser, (a, b, c), clock = pool()
    chooser.cool_down(b, 5)
    assert chooser.after([a, b, c], a) == (c, 0.0)
    chooser.cool_down(a, 3)
    chooser.cool_down(c, 9)
    assert chooser.after([a, b, c], c) == (a, 3.0)
    clock[0] += 3
    assert chooser.after([a, b, c], c) == (a, 0.0)


def test_serving_filters_by_model_and_names_what_is_served() -> None:
    """A model nobody serves is a 404-class error listing the models that are."""
    endpoints = [
        Endpoint("http://a/v1", A1, frozenset({"m1"})),
        Endpoint("http://b/v1", A2, None),
    ]
    chooser = EndpointPool(endpoints)
    assert chooser.serving("m1") == endpoints
    assert chooser.serving("zz") == [endpoints[1]]
    only_known = EndpointPool(endpoints[:1])
    with pytest.raises(HTTPClientError, match="no endpoint serves model 'zz'") as caught:
        only_known.serving("zz")
    assert caught.value.hint == "models served: m1"
