from __future__ import annotations

import pytest

from ticker.core.errors import ConfigError
from ticker.server.settings import Settings


def test_defaults_pick_memory_and_generate_an_admin_token():
    s = Settings.from_env({})
    assert s.broker == "memory"
    assert s.topic == "prices"
    assert s.project == "ticker-local"
    assert s.admin_token_generated
    assert len(s.admin_token) >= 24
    assert s.max_connection_age < 3600


def test_an_emulator_or_project_selects_pubsub():
    assert Settings.from_env({"PUBSUB_EMULATOR_HOST": "127.0.0.1:1"}).broker == "pubsub"
    assert Settings.from_env({"GOOGLE_CLOUD_PROJECT": "p"}).broker == "pubsub"
    assert Settings.from_env({"GOOGLE_CLOUD_PROJECT": "p", "TICKER_BROKER": "memory"}).broker == (
        "memory"
    )


def test_contract_variables_are_read():
    s = Settings.from_env(
        {
            "TICKER_TOPIC": "t1",
            "TICKER_ADMIN_TOKEN": "secret",
            "TICKER_SIM_SYMBOLS": "aapl, msft",
            "TICKER_SIM_RATE": "50",
            "TICKER_MAX_CONNECTION_AGE": "30",
            "GAE_INSTANCE": "aef-Default-1234",
        }
    )
    assert (s.topic, s.admin_token, s.admin_token_generated) == ("t1", "secret", False)
    assert s.sim_symbols == ("AAPL", "MSFT")
    assert s.sim_rate == 50.0
    assert s.max_connection_age == 30.0
    assert s.control_topic == "t1-control"
    assert s.subscription_prefix.startswith("ticker-aef-default-1234-")


def test_every_boot_gets_a_fresh_subscription_name():
    assert Settings.from_env({}).subscription_prefix != Settings.from_env({}).subscription_prefix


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"TICKER_BROKER": "kafka"}, "TICKER_BROKER"),
        ({"TICKER_SIM_RATE": "fast"}, "TICKER_SIM_RATE"),
        ({"TICKER_SIM_RATE": "-1"}, "TICKER_SIM_RATE"),
        ({"TICKER_MAX_CONNECTION_AGE": "7200"}, "TICKER_MAX_CONNECTION_AGE"),
        ({"TICKER_SIM_SYMBOLS": "AAPL,../x"}, "TICKER_SIM_SYMBOLS"),
        ({"TICKER_MAX_SYMBOLS": "1.5"}, "TICKER_MAX_SYMBOLS"),
        ({"TICKER_TRUSTED_PROXIES": "10.0.0.0/8,everyone"}, "TICKER_TRUSTED_PROXIES"),
        ({"TICKER_HEADER_TIMEOUT": "0"}, "TICKER_HEADER_TIMEOUT"),
        ({"TICKER_PRESENCE_BUDGET": "0"}, "TICKER_PRESENCE_BUDGET"),
    ],
)
def test_bad_values_name_the_variable(env, name):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env(env)


def test_forwarded_headers_are_trusted_from_private_networks_unless_configured():
    default = Settings.from_env({})
    assert [str(n) for n in default.trusted_proxies][:3] == ["127.0.0.0/8", "::1/128", "10.0.0.0/8"]
    assert not any(n.is_global for n in default.trusted_proxies)  # never a public address
    chosen = Settings.from_env({"TICKER_TRUSTED_PROXIES": "172.17.0.1, 10.8.0.0/16"})
    assert [str(n) for n in chosen.trusted_proxies] == ["172.17.0.1/32", "10.8.0.0/16"]
    assert Settings.from_env({"TICKER_HEADER_TIMEOUT": "2.5"}).header_timeout == 2.5


def test_the_presence_budget_is_read():
    assert Settings.from_env({}).presence_budget == 20.0
    assert Settings.from_env({"TICKER_PRESENCE_BUDGET": "5"}).presence_budget == 5.0
