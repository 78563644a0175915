"""Settings: defaults, parsing, one clear line per problem, .env files, frozen, secrets masked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from bot.config import MASK, NOT_SET, Settings, SettingsError, describe, env_var, load_settings


@pytest.fixture
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No setting comes from the real environment or a .env in the working directory."""
    names = {name.upper() for name in Settings.model_fields} | {"TEAMS_APP_PASSWORD"}
    for key in list(os.environ):
        if key.upper() in names:
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def problems(env: dict[str, str]) -> list[str]:
    with pytest.raises(SettingsError) as raised:
        load_settings(env, env_file=None)
    lines = str(raised.value).splitlines()
    assert lines == raised.value.problems
    return lines


def test_defaults() -> None:
    settings = load_settings({}, env_file=None)
    assert settings.database_url == "sqlite+aiosqlite:///./ndrbot.db"
    assert settings.org_domains == ()
    assert settings.log_level == "INFO"
    assert settings.host == "127.0.0.1"
    assert settings.port == 3978


def test_values_from_the_mapping() -> None:
    settings = load_settings(
        {
            "DATABASE_URL": "postgresql+asyncpg://bot:pw@db.internal:5432/ndrbot",
            "ORG_DOMAINS": "contoso.com, fabrikam.co.uk",
            "LOG_LEVEL": "debug",
            "HOST": "0.0.0.0",  # noqa: S104 - a value under test, nothing is bound
            "PORT": "8080",
        },
        env_file=None,
    )
    assert settings.database_url == "postgresql+asyncpg://bot:pw@db.internal:5432/ndrbot"
    assert settings.org_domains == ("contoso.com", "fabrikam.co.uk")
    assert settings.log_level == "DEBUG"
    assert settings.host == "0.0.0.0"  # noqa: S104
    assert settings.port == 8080


def test_env_var_names_are_case_insensitive() -> None:
    assert load_settings({"port": "4000"}, env_file=None).port == 4000


@pytest.mark.parametrize(
    ("given", "domains"),
    [
        ("contoso.com,fabrikam.co.uk", ("contoso.com", "fabrikam.co.uk")),
        ("contoso.com fabrikam.co.uk", ("contoso.com", "fabrikam.co.uk")),
        (" Contoso.COM ,  FABRIKAM.co.uk, ", ("contoso.com", "fabrikam.co.uk")),
        ("contoso.com\tfabrikam.co.uk\ncontoso.com", ("contoso.com", "fabrikam.co.uk")),
        ("mail.contoso.com.", ("mail.contoso.com",)),
        ("xn--mnchen-3ya.de", ("xn--mnchen-3ya.de",)),
        ("", ()),
        ("  ,  ", ()),
    ],
)
def test_org_domains_lists(given: str, domains: tuple[str, ...]) -> None:
    assert load_settings({"ORG_DOMAINS": given}, env_file=None).org_domains == domains


@pytest.mark.parametrize(
    ("env", "line"),
    [
        ({"ORG_DOMAINS": "contoso"}, 'ORG_DOMAINS: "contoso" is not a domain name'),
        (
            {"ORG_DOMAINS": "contoso.com, under_score.com, -bad.com"},
            'ORG_DOMAINS: "under_score.com", "-bad.com" are not domain names',
        ),
        ({"ORG_DOMAINS": "a..b"}, 'ORG_DOMAINS: "a..b" is not a domain name'),
        ({"PORT": "0"}, "PORT: must be between 1 and 65535"),
        ({"PORT": "65536"}, "PORT: must be between 1 and 65535"),
        ({"PORT": "http"}, "PORT: must be a whole number"),
        ({"HOST": "  "}, "HOST: must not be empty"),
        (
            {"LOG_LEVEL": "verbose"},
            'LOG_LEVEL: "verbose" is not one of DEBUG, INFO, WARNING, ERROR',
        ),
        (
            {"DATABASE_URL": "postgresql://bot@db/ndrbot"},
            "DATABASE_URL: needs the async driver: write postgresql+asyncpg:// (not postgresql://)",
        ),
        (
            {"DATABASE_URL": "postgresql+psycopg2://bot@db/ndrbot"},
            "DATABASE_URL: needs the async driver: write postgresql+asyncpg:// "
            "(not postgresql+psycopg2://)",
        ),
        (
            {"DATABASE_URL": "sqlite:///./ndrbot.db"},
            "DATABASE_URL: needs the async driver: write sqlite+aiosqlite:// (not sqlite://)",
        ),
        (
            {"DATABASE_URL": "mysql+aiomysql://bot@db/ndrbot"},
            "DATABASE_URL: mysql is not supported; "
            "use sqlite+aiosqlite:// or postgresql+asyncpg://",
        ),
        (
            {"DATABASE_URL": "ndrbot.db"},
            "DATABASE_URL: not a database URL; expected e.g. sqlite+aiosqlite:///./ndrbot.db",
        ),
    ],
)
def test_each_invalid_value_names_its_env_var(env: dict[str, str], line: str) -> None:
    assert problems(env) == [line]


def test_one_line_per_problem() -> None:
    lines = problems(
        {"PORT": "99999", "ORG_DOMAINS": "contoso", "DATABASE_URL": "postgresql://x@y/z"}
    )
    assert len(lines) == 3
    assert [line.split(":", 1)[0] for line in lines] == ["DATABASE_URL", "ORG_DOMAINS", "PORT"]


def test_an_env_file_is_read_and_env_vars_win(tmp_path: Path) -> None:
    env_file = tmp_path / "bot.env"
    env_file.write_text(
        "# local settings\nPORT=4000\nORG_DOMAINS=contoso.com, fabrikam.co.uk\n"
        "LOG_LEVEL=warning\nSOMETHING_ELSE=ignored\n",
        encoding="utf-8",
    )
    from_file = load_settings({}, env_file=env_file)
    assert from_file.port == 4000
    assert from_file.org_domains == ("contoso.com", "fabrikam.co.uk")
    assert from_file.log_level == "WARNING"
    overridden = load_settings({"PORT": "5000"}, env_file=str(env_file))
    assert overridden.port == 5000
    assert overridden.log_level == "WARNING"


def test_problems_in_an_env_file_name_the_env_var(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("PORT=70000\n", encoding="utf-8")
    with pytest.raises(SettingsError, match=r"^PORT: must be between 1 and 65535$"):
        load_settings({}, env_file=env_file)


def test_a_missing_env_file_is_fine(tmp_path: Path) -> None:
    assert load_settings({}, env_file=tmp_path / "absent.env").port == 3978


def test_a_given_mapping_ignores_the_working_directory_env_file(
    clean_environ: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("PORT=4000\n", encoding="utf-8")
    clean_environ.setenv("PORT", "5000")
    assert load_settings({}).port == 3978


def test_the_process_environment_over_the_env_file(
    clean_environ: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("PORT=4000\nHOST=10.0.0.1\n", encoding="utf-8")
    clean_environ.setenv("PORT", "5000")
    clean_environ.setenv("org_domains", "Contoso.com fabrikam.co.uk")
    settings = load_settings()
    assert settings.port == 5000
    assert settings.host == "10.0.0.1"
    assert settings.org_domains == ("contoso.com", "fabrikam.co.uk")


def test_settings_built_directly_read_a_plain_domain_list(
    clean_environ: pytest.MonkeyPatch,
) -> None:
    clean_environ.setenv("ORG_DOMAINS", "contoso.com,fabrikam.co.uk")
    assert Settings().org_domains == ("contoso.com", "fabrikam.co.uk")


def test_settings_are_frozen() -> None:
    settings = load_settings({}, env_file=None)
    with pytest.raises(ValidationError):
        settings.port = 1  # type: ignore[misc]
    assert settings.port == 3978


class SettingsWithSecrets(Settings):
    """What the class looks like once Teams credentials arrive: one line per secret."""

    teams_app_password: SecretStr | None = None


def test_describe_masks_secrets_and_database_passwords(clean_environ: pytest.MonkeyPatch) -> None:
    settings = SettingsWithSecrets(
        teams_app_password=SecretStr("hunter2-very-secret"),
        database_url="postgresql+asyncpg://bot:db-password@db:5432/ndrbot",
        org_domains=("contoso.com",),
        _env_file=None,  # type: ignore[call-arg]
    )
    shown = describe(settings)
    assert set(shown) == {env_var(name) for name in SettingsWithSecrets.model_fields}
    assert shown["DATABASE_URL"] == "postgresql+asyncpg://bot:***@db:5432/ndrbot"
    assert shown["ORG_DOMAINS"] == "contoso.com"
    assert shown["TEAMS_APP_PASSWORD"] == MASK
    assert shown["MICROSOFT_APP_PASSWORD"] == NOT_SET
    for text in (str(shown), repr(settings), str(settings)):
        assert "hunter2" not in text
        assert "db-password" not in text
    unset = SettingsWithSecrets(_env_file=None)  # type: ignore[call-arg]
    assert describe(unset)["TEAMS_APP_PASSWORD"] == NOT_SET


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"JOB_LEASE_SECONDS": "0.5"}, "JOB_LEASE_SECONDS: must be between 1 and 3600 seconds"),
        ({"JOB_LEASE_SECONDS": "a while"}, "JOB_LEASE_SECONDS: "),
        ({"KEPT_EVENT_LEASE_SECONDS": "1"}, "KEPT_EVENT_LEASE_SECONDS: must be between 2 and 300"),
        (
            {"KEPT_EVENT_LEASE_SECONDS": "301"},
            "KEPT_EVENT_LEASE_SECONDS: must be between 2 and 300",
        ),
        ({"DATABASE_TIMEOUT_SECONDS": "0"}, "DATABASE_TIMEOUT_SECONDS: "),
        ({"DATABASE_TIMEOUT_SECONDS": "121"}, "DATABASE_TIMEOUT_SECONDS: "),
        ({"SLACK_MAX_WORK_IN_FLIGHT": "0"}, "SLACK_MAX_WORK_IN_FLIGHT: must be between 1 and 1000"),
        ({"SLACK_MAX_WORK_IN_FLIGHT": "1001"}, "SLACK_MAX_WORK_IN_FLIGHT: must be between 1 and"),
        ({"SLACK_MAX_WORK_IN_FLIGHT": "lots"}, "SLACK_MAX_WORK_IN_FLIGHT: "),
    ],
)
def test_a_lease_or_timeout_out_of_range_is_a_settings_error_naming_it(
    env: dict[str, str], expected: str
) -> None:
    (line,) = problems(env)
    assert line.startswith(expected), line
    assert load_settings({}, env_file=None).job_lease_seconds == 10


# ---- Exchange Online ---------------------------------------------------------------------------

EXCHANGE = {
    "EXCHANGE_TENANT_ID": "contoso.onmicrosoft.com",
    "EXCHANGE_CLIENT_ID": "a1b2c3d4-1111-2222-3333-444455556666",
    "EXCHANGE_CLIENT_SECRET": "s3cret-value",
}


def test_exchange_is_off_with_none_of_its_settings() -> None:
    settings = load_settings({}, env_file=None)
    assert not settings.exchange_enabled
    assert settings.exchange_authority_url == "https://login.microsoftonline.com"
    assert settings.exchange_api_url == "https://outlook.office365.com/adminapi/beta"


def test_exchange_is_on_with_a_tenant_an_app_and_a_secret() -> None:
    settings = load_settings(EXCHANGE, env_file=None)
    assert settings.exchange_enabled
    assert describe(settings)["EXCHANGE_CLIENT_SECRET"] == MASK
    assert "s3cret-value" not in repr(settings)


@pytest.mark.parametrize(
    ("left_out", "named"),
    [
        ("EXCHANGE_TENANT_ID", "EXCHANGE_TENANT_ID is missing"),
        ("EXCHANGE_CLIENT_ID", "EXCHANGE_CLIENT_ID is missing"),
        (
            "EXCHANGE_CLIENT_SECRET",
            "EXCHANGE_CLIENT_SECRET or EXCHANGE_CERTIFICATE_PATH is missing",
        ),
    ],
)
def test_half_set_exchange_is_a_settings_error_naming_what_is_missing(
    left_out: str, named: str
) -> None:
    env = {name: value for name, value in EXCHANGE.items() if name != left_out}
    (line,) = problems(env)
    assert named in line
    assert line.startswith("Exchange is half set")
    assert "s3cret-value" not in line


def test_only_a_secret_is_half_set_too() -> None:
    (line,) = problems({"EXCHANGE_CLIENT_SECRET": "s3cret-value"})
    assert "EXCHANGE_TENANT_ID is missing; EXCHANGE_CLIENT_ID is missing" in line


def test_the_certificate_must_hold_a_key_and_a_certificate(tmp_path: Path) -> None:
    import trustme

    leaf = trustme.CA().issue_cert("app", key_type=trustme.KeyType.RSA)
    whole, key_only, cert_only = tmp_path / "app.pem", tmp_path / "key.pem", tmp_path / "cert.pem"
    whole.write_bytes(leaf.private_key_and_cert_chain_pem.bytes())
    key_only.write_bytes(leaf.private_key_pem.bytes())
    cert_only.write_bytes(leaf.cert_chain_pems[0].bytes())
    base = {k: v for k, v in EXCHANGE.items() if k != "EXCHANGE_CLIENT_SECRET"}
    assert load_settings({**base, "EXCHANGE_CERTIFICATE_PATH": str(whole)}).exchange_enabled
    (line,) = problems({**base, "EXCHANGE_CERTIFICATE_PATH": str(key_only)})
    assert line == f"EXCHANGE_CERTIFICATE_PATH: {key_only} holds no PEM certificate"
    (line,) = problems({**base, "EXCHANGE_CERTIFICATE_PATH": str(cert_only)})
    assert "holds no unencrypted PEM private key" in line
    (line,) = problems({**base, "EXCHANGE_CERTIFICATE_PATH": str(tmp_path / "none.pem")})
    assert line.startswith("EXCHANGE_CERTIFICATE_PATH: ")
    assert "no such file" in line
    (line,) = problems({**EXCHANGE, "EXCHANGE_CERTIFICATE_PATH": str(whole)})
    assert "both set" in line


def test_exchange_urls_must_be_https() -> None:
    (line,) = problems({"EXCHANGE_API_URL": "http://outlook.office365.com/adminapi/beta"})
    assert line.startswith("EXCHANGE_API_URL: must be an https:// URL")
    settings = load_settings({"EXCHANGE_AUTHORITY_URL": "https://login.microsoftonline.us/"})
    assert settings.exchange_authority_url == "https://login.microsoftonline.us"


def test_exchange_settings_set_empty_are_unset() -> None:
    names = ("TENANT_ID", "CLIENT_ID", "CLIENT_SECRET", "CERTIFICATE_PATH", "CA_BUNDLE")
    settings = load_settings({f"EXCHANGE_{name}": "" for name in names}, env_file=None)
    assert not settings.exchange_enabled
    assert settings.exchange_ca_bundle is None
