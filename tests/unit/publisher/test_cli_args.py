"""Command-line validation: bad arguments exit with status 2 and an argparse-style message."""

from __future__ import annotations

import pytest

from publisher import cli, feed


def exit_code_and_stderr(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> tuple[str | int | None, str]:
    with pytest.raises(SystemExit) as info:
        cli.main(argv, environ={})
    return info.value.code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rate", "-1"], "argument --rate: must be > 0, got -1"),
        (["--rate=0"], "argument --rate: must be > 0"),
        (["--rate", "fast"], "argument --rate: not a number: 'fast'"),
        (["--rate", "inf"], "argument --rate: must be > 0"),
        (["--duration", "-5"], "argument --duration: must be >= 0"),
        (["--symbols", "AAPL,BAD!"], "argument --symbols: invalid symbol 'BAD!'"),
        (["--symbols", "AAPL,,MSFT"], "argument --symbols: invalid symbol ''"),
        (["--symbols", "A" * 16], "argument --symbols: invalid symbol"),
        (["--topic", "1prices"], "argument --topic: invalid topic id '1prices'"),
        (["--topic", "goog-x"], "argument --topic: invalid topic id"),
        (["--max-in-flight", "0"], "argument --max-in-flight: must be > 0"),
        (["--project", " "], "--project must not be empty"),
        (
            ["--replay", "/nonexistent/ticks.csv"],
            "--replay: file not found: /nonexistent/ticks.csv",
        ),
        (["--replay", "x.csv", "--symbols", "AAPL"], "not allowed with argument"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(capsys, argv, message):
    code, err = exit_code_and_stderr(capsys, argv)
    assert code == 2
    assert "usage: ticker-publish" in err
    assert message in err


def test_defaults_come_from_the_environment():
    opts = cli.parse_args([], {"TICKER_TOPIC": "ticks", "GOOGLE_CLOUD_PROJECT": "acme"})
    assert (opts.topic, opts.project) == ("ticks", "acme")
    assert opts.symbols == list(feed.DEFAULT_PRICES)
    assert (opts.rate, opts.duration, opts.progress_interval) == (10.0, 0.0, 5.0)


def test_defaults_without_environment():
    opts = cli.parse_args([], {})
    assert (opts.topic, opts.project, opts.replay) == ("prices", "ticker-local", None)


def test_symbols_are_normalised_to_upper_case_and_deduplicated():
    opts = cli.parse_args(["--symbols", " aapl,msft,AAPL,brk.b "], {})
    assert opts.symbols == ["AAPL", "MSFT", "BRK.B"]


def test_a_bad_replay_file_is_rejected_before_connecting(capsys, tmp_path):
    path = tmp_path / "ticks.csv"
    path.write_text("symbol,price\nAAPL,190\nMSFT,oops\nGOOG,-1\n")
    # No PUBSUB_EMULATOR_HOST and no credentials: reaching Pub/Sub would fail with 1, not 2.
    assert cli.main(["--replay", str(path)], environ={}) == 2
    err = capsys.readouterr().err
    assert "line 3: price is not a number: 'oops'" in err
    assert "line 4: price must be positive" in err
    assert "2 bad line(s); nothing published" in err


def test_help_documents_the_replay_columns(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--help"], environ={})
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "symbol,price" in out
    assert "volume,bid,ask,open" in out
    assert "delay_ms" in out
