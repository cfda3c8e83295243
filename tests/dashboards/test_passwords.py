from __future__ import annotations

import pytest

from dashboards.passwords import MAX_PASSWORD_BYTES, PasswordError, hash_password, verify_password
from finops.config import ConfigError, load_config


def test_a_hash_verifies_only_its_own_password_and_is_salted():
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first != second  # a fresh salt each time
    assert first.startswith("scrypt$16384$8$1$")
    assert verify_password("correct horse", first)
    assert verify_password("correct horse", second)
    assert not verify_password("correct hors", first)
    assert not verify_password("", first)


@pytest.mark.parametrize("stored", ["", "plain", "scrypt$1$2$3", "scrypt$x$8$1$abc$def", "bcrypt$1$1$1$a$b"])
def test_a_malformed_hash_never_matches(stored):
    assert not verify_password("anything", stored)


def test_empty_and_huge_passwords_are_refused():
    with pytest.raises(PasswordError, match="empty"):
        hash_password("")
    with pytest.raises(PasswordError, match="at most"):
        hash_password("x" * (MAX_PASSWORD_BYTES + 1))
    assert not verify_password("x" * (MAX_PASSWORD_BYTES + 1), hash_password("x"))


def write(tmp_path, text):
    path = tmp_path / "finops.yaml"
    path.write_text(text)
    return path


def test_config_takes_users_and_refuses_bad_ones(tmp_path):
    digest = hash_password("pw")
    config = load_config(
        write(
            tmp_path,
            f"""
dashboard:
  port: 9050
  public_url: https://finops.example.com/
  users:
    - {{name: ana, role: team, team: search, password_hash: "{digest}"}}
    - {{name: fin, role: finance, password_hash: "{digest}"}}
""",
        ),
        environ={},
    )
    assert config.dashboard.port == 9050
    assert config.dashboard.base_url() == "https://finops.example.com"
    assert [u.name for u in config.dashboard.users] == ["ana", "fin"]
    assert load_config(None, environ={}).dashboard.base_url() == "http://127.0.0.1:8050"

    bad = {
        "plain password": ("{name: a, role: admin, password_hash: hunter2}", "password_hash"),
        "team without team": (f'{{name: a, role: team, password_hash: "{digest}"}}', "no team"),
        "team on admin": (f'{{name: a, role: admin, team: x, password_hash: "{digest}"}}', "only role team"),
        "unknown role": (f'{{name: a, role: boss, password_hash: "{digest}"}}', "role"),
    }
    for what, (entry, message) in bad.items():
        with pytest.raises(ConfigError, match=message):
            load_config(write(tmp_path, f"dashboard:\n  users:\n    - {entry}\n"), environ={})
        assert what
    twice = f'{{name: a, role: admin, password_hash: "{digest}"}}'
    with pytest.raises(ConfigError, match="unique"):
        load_config(write(tmp_path, f"dashboard:\n  users:\n    - {twice}\n    - {twice}\n"), environ={})
    with pytest.raises(ConfigError, match="public_url"):
        load_config(write(tmp_path, "dashboard:\n  public_url: finops.local\n"), environ={})


def test_the_cli_prints_a_hash_that_verifies():
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "finops.cli", "dashboard-user", "hash", "--password-stdin"],
        input="s3cret pass\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert verify_password("s3cret pass", done.stdout.strip())
    empty = subprocess.run(
        [sys.executable, "-m", "finops.cli", "dashboard-user", "hash", "--password-stdin"],
        input="\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert empty.returncode == 2 and "must not be empty" in empty.stderr
