"""The ``switchboard`` command, run as a real process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest


def run_cli(data_dir: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SWITCHBOARD_DATA_DIR": str(data_dir)}
    env.pop("DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "app.faces.cli", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def test_bootstrap_json_and_duplicate_email(data_dir: Path) -> None:
    result = run_cli(data_dir, "bootstrap", "--org", "Acme", "--email", "Ops@Acme.io", "--password", "hunter2hunter2", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert set(out) == {"organization", "user", "api_key"}
    assert set(out["organization"]) == {"id", "name"} and out["organization"]["name"] == "Acme"
    assert set(out["user"]) == {"id", "email"} and out["user"]["email"] == "Ops@Acme.io"
    assert out["api_key"].startswith("ak_") and len(out["api_key"]) >= 43
    assert (data_dir / "switchboard.db").exists()

    again = run_cli(data_dir, "bootstrap", "--org", "Other", "--email", "ops@acme.IO", "--password", "hunter2hunter2", "--json")
    assert again.returncode == 1
    assert "already exists" in again.stderr
    assert again.stdout == ""


def test_create_api_key_with_scopes(data_dir: Path) -> None:
    boot = json.loads(run_cli(data_dir, "bootstrap", "--org", "A", "--email", "a@a.io", "--password", "pw-pw-pw-pw", "--json").stdout)
    org_id = boot["organization"]["id"]
    result = run_cli(data_dir, "create-api-key", "--org", org_id, "--name", "zapier", "--scopes", "agents:read,conversations:write", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["api_key"].startswith("ak_") and out["scopes"] == ["agents:read", "conversations:write"]

    bad_scope = run_cli(data_dir, "create-api-key", "--org", org_id, "--name", "x", "--scopes", "everything")
    assert bad_scope.returncode == 1 and "scope" in bad_scope.stderr
    no_org = run_cli(data_dir, "create-api-key", "--org", "org_missing", "--name", "x")
    assert no_org.returncode == 1 and "org_missing" in no_org.stderr


def test_bad_password_and_plan_are_clear_errors(data_dir: Path) -> None:
    short = run_cli(data_dir, "bootstrap", "--org", "A", "--email", "a@a.io", "--password", "x")
    assert short.returncode == 1 and "password" in short.stderr
    plan = run_cli(data_dir, "bootstrap", "--org", "A", "--email", "a@a.io", "--password", "long enough", "--plan", "gold")
    assert plan.returncode == 1 and "plan" in plan.stderr


def test_serve_on_a_taken_port_fails_at_once(data_dir: Path) -> None:
    """Bound before it is announced: one clear line on stderr and a non-zero exit, not a
    "listening" line followed by a process that never ends."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        try:
            result = run_cli(data_dir, "serve", "--host", "127.0.0.1", "--port", str(port), timeout=20)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"serve kept running on a taken port: {exc.stdout!r} {exc.stderr!r}") from None
    assert result.returncode != 0
    assert result.stderr.strip() == f"switchboard: cannot listen on 127.0.0.1:{port}: address already in use"
    assert "listening" not in result.stdout.lower()


def test_serve_with_a_bad_smtp_url_says_so_before_listening(tmp_path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "SWITCHBOARD_DATA_DIR": str(tmp_path), "SWITCHBOARD_SMTP_URL": "http://mail.example"}
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "app.faces.cli", "serve", "--port", "0"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "SWITCHBOARD_SMTP_URL must start with smtp:// or smtps://" in result.stderr
    assert "listening" not in result.stdout


def test_serve_with_bad_push_settings_says_so_before_listening(tmp_path) -> None:
    import os
    import subprocess
    import sys

    not_a_key = tmp_path / "AuthKey.p8"
    not_a_key.write_text("not a key")
    cases = [
        ({"SWITCHBOARD_APNS_KEY_FILE": str(tmp_path / "missing.p8")}, "SWITCHBOARD_APNS_KEY_FILE cannot be read"),
        ({"SWITCHBOARD_APNS_KEY_FILE": str(not_a_key)}, "SWITCHBOARD_APNS_KEY_FILE is not a .p8 private key"),
        ({"SWITCHBOARD_VAPID_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----"},
         "SWITCHBOARD_VAPID_PRIVATE_KEY is not a P-256 private key"),
    ]
    for extra, message in cases:
        env = {**os.environ, "SWITCHBOARD_DATA_DIR": str(tmp_path), "SWITCHBOARD_APNS_KEY_ID": "KEY1234567",
               "SWITCHBOARD_APNS_TEAM_ID": "TEAM123456", **extra}
        env.pop("DATABASE_URL", None)
        result = subprocess.run(
            [sys.executable, "-m", "app.faces.cli", "serve", "--port", "0"], env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 2, result.stderr
        assert message in result.stderr
        assert "listening" not in result.stdout
