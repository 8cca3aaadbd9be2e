"""The production settings pass Django's deployment checklist, run the way a deployment runs it:
a separate `manage.py check --deploy` process configured only by environment variables."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "csp.settings",
    "DEBUG": "0",
    "ALLOWED_HOSTS": "csp.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://csp.example.com",
    "DATABASE_URL": "postgres://csp:secret@db.internal:5432/csp",
    "REDIS_URL": "redis://redis.internal:6379/0",
}


# Set by the test run itself (DJANGO_ALLOW_ASYNC_UNSAFE by the browser tests), never in production.
NOT_INHERITED = {
    "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "SECRET_KEY_FILE", "DEBUG", "DJANGO_SETTINGS_MODULE",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
}  # fmt: skip


def check_deploy(**overrides: str) -> subprocess.CompletedProcess:
    inherited = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
    env = {**inherited, **PRODUCTION_ENV, **overrides}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_the_deployment_checklist_without_warnings():
    result = check_deploy(SECRET_KEY=secrets.token_urlsafe(50))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_secret_key_can_come_from_a_file(tmp_path):
    key_file = tmp_path / "secret_key"
    key_file.write_text(secrets.token_urlsafe(50) + "\n")

    result = check_deploy(SECRET_KEY_FILE=str(key_file))

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_embedded_default_secret_key_fails_the_checklist():
    result = check_deploy()

    assert result.returncode != 0
    assert "security.W009" in result.stdout + result.stderr
