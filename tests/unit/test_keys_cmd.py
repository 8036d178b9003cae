"""`tradebus keys generate` / `tradebus keys show`: modes, refusals, output."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import zmq.auth

from bus.security import load_public_key, load_secret_key
from services.cli.keys_cmd import EXIT_OK, EXIT_REFUSED
from services.cli.main import main


def test_generate_writes_key_pairs_with_owner_only_secrets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = tmp_path / "keys"
    assert main(["keys", "generate", "sequencer", "strategy-sma", "--dir", str(directory)]) == EXIT_OK
    assert directory.stat().st_mode & 0o777 == 0o700
    assert sorted(p.name for p in directory.iterdir()) == [
        "sequencer.key", "sequencer.key_secret", "strategy-sma.key", "strategy-sma.key_secret",
    ]
    out = capsys.readouterr().out
    for name in ("sequencer", "strategy-sma"):
        secret, public = directory / f"{name}.key_secret", directory / f"{name}.key"
        assert secret.stat().st_mode & 0o777 == 0o600
        assert public.stat().st_mode & 0o777 == 0o644
        pair = load_secret_key(secret)
        assert pair.public == load_public_key(public) == zmq.auth.load_certificate(public)[0]
        assert pair.public.decode() in out
        assert pair.secret is not None and pair.secret.decode() not in out  # never printed
    assert load_public_key(directory / "sequencer.key") != load_public_key(directory / "strategy-sma.key")


def test_generate_refuses_to_overwrite_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "generate", "a", "--dir", str(tmp_path)]) == EXIT_OK
    before = (tmp_path / "a.key_secret").read_bytes()
    capsys.readouterr()

    # One existing name refuses the whole run: "b" is not written either.
    assert main(["keys", "generate", "b", "a", "--dir", str(tmp_path)]) == EXIT_REFUSED
    err = capsys.readouterr().err
    assert "refusing to overwrite" in err and "a.key_secret" in err and "--force" in err
    assert (tmp_path / "a.key_secret").read_bytes() == before
    assert not (tmp_path / "b.key_secret").exists()

    assert main(["keys", "generate", "a", "--dir", str(tmp_path), "--force"]) == EXIT_OK
    assert (tmp_path / "a.key_secret").read_bytes() != before
    assert (tmp_path / "a.key_secret").stat().st_mode & 0o777 == 0o600


def test_generate_refuses_bad_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "generate", "ok", "../escape", "--dir", str(tmp_path / "k")]) == EXIT_REFUSED
    assert "invalid key name '../escape'" in capsys.readouterr().err
    assert not (tmp_path / "k").exists()


def test_show_prints_the_public_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["keys", "generate", "gateway-sim", "--dir", str(tmp_path)])
    capsys.readouterr()
    assert main(["keys", "show", "gateway-sim", "--dir", str(tmp_path)]) == EXIT_OK
    out = capsys.readouterr().out
    assert out == load_public_key(tmp_path / "gateway-sim.key").decode() + "\n"


def test_show_falls_back_to_the_secret_file_under_the_f5_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["keys", "generate", "x", "--dir", str(tmp_path)])
    public = load_public_key(tmp_path / "x.key")
    (tmp_path / "x.key").unlink()
    capsys.readouterr()
    assert main(["keys", "show", "x", "--dir", str(tmp_path)]) == EXIT_OK
    assert capsys.readouterr().out.strip() == public.decode()
    os.chmod(tmp_path / "x.key_secret", 0o644)
    assert main(["keys", "show", "x", "--dir", str(tmp_path)]) == EXIT_REFUSED
    assert "0644" in capsys.readouterr().err


def test_show_unknown_name_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "show", "nobody", "--dir", str(tmp_path)]) == EXIT_REFUSED
    assert "no key files for 'nobody'" in capsys.readouterr().err
