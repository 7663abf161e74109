"""The startup data lists: non-empty and shaped as rust_core's UaRules / BotLists expect."""

from __future__ import annotations

import ipaddress
import re

import pytest

from trail import datalists


@pytest.fixture(scope="module")
def ua_rules() -> dict:
    return datalists.load_ua_rules()


@pytest.mark.parametrize("kind", ["user_agent", "os", "device"])
def test_ua_rules_are_lists_of_five_tuples(ua_rules: dict, kind: str) -> None:
    rules = ua_rules[kind]
    assert len(rules) > 100
    for rule in rules:
        assert isinstance(rule, tuple) and len(rule) == 5
        assert isinstance(rule[0], str) and rule[0]
        assert all(f is None or isinstance(f, str) for f in rule[1:])


def test_ua_rules_keep_the_device_case_flag(ua_rules: dict) -> None:
    flags = {rule[1] for rule in ua_rules["device"]}
    assert flags == {None, "i"}


def test_ua_rules_find_chrome_first_like_uap_does(ua_rules: dict) -> None:
    ua = (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
    )
    regex, family, *_ = next(r for r in ua_rules["user_agent"] if re.search(r[0], ua))
    match = re.search(regex, ua)
    assert match is not None
    assert (family or match.group(1)) == "Chrome"


def test_bot_lists_shape() -> None:
    lists = datalists.load_bot_lists(["203.0.113.0/24", " 198.51.100.7 ", ""])
    assert set(lists) == {"ua_patterns", "ua_keywords", "spam_hosts", "ip_blocks"}
    assert len(lists["ua_patterns"]) > 1000
    assert all(isinstance(p, str) and p for p in lists["ua_patterns"])
    assert lists["ip_blocks"] == ["203.0.113.0/24", "198.51.100.7"]
    for net in lists["ip_blocks"]:
        ipaddress.ip_network(net)


def test_curated_lists_are_lowercase_entries() -> None:
    lists = datalists.load_bot_lists()
    keywords, hosts = lists["ua_keywords"], lists["spam_hosts"]
    expected = {"bot", "crawl", "spider", "headless", "curl", "wget", "python-requests"}
    assert expected <= set(keywords)
    assert "semalt.com" in hosts and "darodar.com" in hosts
    for entry in keywords + hosts:
        assert entry == entry.strip().lower() and not entry.startswith("#")
    for host in hosts:
        assert re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", host), host
    assert len(set(keywords)) == len(keywords)
    assert len(set(hosts)) == len(hosts)


def test_data_files_ship_inside_the_package() -> None:
    from importlib import resources

    data = resources.files("trail").joinpath("data")
    for name in ("bot_keywords.txt", "referrer_spam.txt", "SOURCES.md"):
        assert data.joinpath(name).is_file(), name
