"""The Host and Origin rules, the per-token slots and the connection cap, as plain functions."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest

from ai_admin.config import Settings
from ai_admin.errors import AiAdminError, ErrorCode
from ai_admin.http import listener
from ai_admin.http.guard import HostPolicy, OriginPolicy, TokenSlots, split_host


def settings(tmp_path: Path, **options: object) -> Settings:
    return Settings(data_dir=tmp_path, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("header", "parsed"),
    [
        ("localhost", ("localhost", None)),
        ("LocalHost.:8060", ("localhost", 8060)),
        ("127.0.0.1:1", ("127.0.0.1", 1)),
        ("[::1]", ("::1", None)),
        ("[::1]:8060", ("::1", 8060)),
        ("::1", ("::1", None)),
        ("host:0", None),
        ("host:65536", None),
        ("host:x", None),
        ("[::1", None),
        ("[::1]x", None),
        ("", None),
        (":80", None),
    ],
)
def test_host_headers_are_read_as_name_and_port(
    header: str, parsed: tuple[str, int | None] | None
) -> None:
    assert split_host(header) == parsed


def test_the_listen_address_and_loopback_names_are_served_with_any_port(tmp_path: Path) -> None:
    hosts = HostPolicy.from_settings(settings(tmp_path, host="192.0.2.7"))
    assert not hosts.any_host
    for header in ("192.0.2.7:8060", "localhost", "127.0.0.1:9", "[::1]:8060", "LOCALHOST"):
        assert hosts.allows(header), header
    for header in ("evil.example", "localhost.evil.example", "192.0.2.8", "[::2]", "a b"):
        assert not hosts.allows(header), header
    assert hosts.allows(None)  # HTTP/1.0 without Host: no browser sends that


def test_configured_hosts_with_a_port_allow_that_port_only(tmp_path: Path) -> None:
    hosts = HostPolicy.from_settings(
        settings(tmp_path, allowed_hosts=["agent.example.org", "proxy.example.org:443"])
    )
    assert hosts.allows("Agent.Example.Org:1234")
    assert hosts.allows("proxy.example.org:443")
    assert not hosts.allows("proxy.example.org:8443")
    assert not hosts.allows("proxy.example.org")
    assert "proxy.example.org:443" in hosts.sdk_patterns()
    assert {"agent.example.org", "agent.example.org:*", "[::1]:*"} <= set(hosts.sdk_patterns())


def test_every_interface_accepts_any_host_until_names_are_configured(tmp_path: Path) -> None:
    for wildcard in ("0.0.0.0", "::"):  # noqa: S104 - the point of the test
        assert HostPolicy.from_settings(settings(tmp_path, host=wildcard)).any_host
        named = HostPolicy.from_settings(
            settings(tmp_path, host=wildcard, allowed_hosts=["agent.lan", "not a host:x"])
        )
        assert not named.any_host
        assert named.allows("agent.lan")
        assert not named.allows("other.lan")
        assert named.unusable == ("not a host:x",)


def test_origins_are_refused_unless_configured(tmp_path: Path) -> None:
    origins = OriginPolicy.from_settings(
        settings(tmp_path, allowed_origins=["https://Dash.example.org/"])
    )
    assert origins.allows(None)
    assert origins.allows("https://dash.example.org")
    for origin in ("http://dash.example.org", "null", "https://dash.example.org.evil"):
        assert not origins.allows(origin), origin


def test_token_slots_refuse_past_the_limit_and_free_on_exit() -> None:
    slots = TokenSlots("event streams", "max_event_streams_per_token", 2)
    with slots.hold("a"), slots.hold("a"):
        with pytest.raises(AiAdminError) as refused:
            slots.check("a")
        assert refused.value.code is ErrorCode.REQUEST_LIMIT_REACHED
        assert refused.value.http_status == 429
        with slots.hold("b"):  # per key
            assert slots.total() == 3
        with pytest.raises(AiAdminError):
            slots.check("b", extra=2)  # counted elsewhere (open MCP sessions)
    assert slots.total() == 0
    assert slots.held("a") == 0


def test_the_connection_cap_stays_below_the_descriptor_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    limits = {"soft": 256, "hard": 256}

    def getrlimit(which: int) -> tuple[int, int]:
        return limits["soft"], limits["hard"]

    def setrlimit(which: int, value: tuple[int, int]) -> None:
        limits["soft"] = value[0]

    monkeypatch.setattr(resource, "getrlimit", getrlimit)
    monkeypatch.setattr(resource, "setrlimit", setrlimit)
    assert listener.connection_cap(1024) == 256 - listener.FD_RESERVE
    assert listener.connection_cap(100) == 100
    limits.update(soft=1024, hard=1_000_000)  # the soft limit is raised as far as needed
    assert listener.connection_cap(4096) == 4096
    assert limits["soft"] == 4096 + listener.FD_RESERVE
    limits.update(soft=64, hard=64)  # a tiny limit still leaves half for the rest
    assert listener.connection_cap(1024) == 32
