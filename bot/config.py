"""Settings: read once at start from env vars (and a .env file), validated, frozen.

``load_settings()`` is the way in; it turns every problem into one line naming the env var. To add a
setting, add one annotated field to ``Settings`` (secrets as ``SecretStr | None = None``); its env
var is the field name in capitals, and ``describe`` masks it if it is a secret. Every setting
that is a URL is shown with its password and its query values hidden (a webhook's
``?code=...&sig=...`` is its secret as much as TICKET_WEBHOOK_SECRET is).
"""

from __future__ import annotations

import contextvars
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings import SettingsError as _PydanticSettingsError

from bot.hosts import HostEntryError, parse_entry
from dialogs.messages import Platform

DEFAULT_DATABASE_URL: Final = "sqlite+aiosqlite:///./ndrbot.db"
DEFAULT_ENV_FILE: Final = Path(".env")
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")
NOT_SET: Final = "(not set)"
MASK: Final = "(set)"  # a secret, as the start-up log shows it: neither its value nor its length
HIDDEN: Final = "***"  # a URL's password or query value, as logs show it

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]

#: Where Teams files come from: OneDrive and SharePoint (a file.download.info's downloadUrl,
#: <tenant>.sharepoint.com and <tenant>-my.sharepoint.com), the Bot Connector's attachments
#: (smba.trafficmanager.net/<region>/v3/attachments/...) and Teams' media store behind them
#: (us-api.asm.skype.com/v1/objects/...), and Bot Framework channels' (Direct Line, Web Chat).
TEAMS_ATTACHMENT_HOSTS: Final = (
    ".sharepoint.com",
    "smba.trafficmanager.net",
    ".asm.skype.com",
    ".botframework.com",
)
#: Where Slack files come from: files.slack.com (url_private, url_private_download) and the
#: workspaces' own hosts it may redirect to. SLACK_API_URL's host is allowed besides.
SLACK_FILE_HOSTS: Final = (".slack.com",)
#: Exchange Online's defaults: Entra ID's sign-in host, and the admin API the
#: ExchangeOnlineManagement module calls (``{EXCHANGE_API_URL}/{tenant}/InvokeCommand``).
EXCHANGE_AUTHORITY_URL: Final = "https://login.microsoftonline.com"
EXCHANGE_API_URL: Final = "https://outlook.office365.com/adminapi/beta"

# The async driver each supported database needs, by SQLAlchemy backend name.
_ASYNC_DRIVERS: Final = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}
_DOMAIN_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_TOP_LEVEL = re.compile(r"[a-z]{2,63}|xn--[a-z0-9-]{1,59}")
_LIST_SEPARATORS = re.compile(r"[,\s]+")
# The platforms an ADMIN_USERS or ALLOWED_TENANTS entry names: every entry says which one.
ADMIN_PLATFORMS: Final = (Platform.TEAMS, Platform.SLACK)
TENANT_PLATFORMS: Final = ADMIN_PLATFORMS
ANY_TENANT: Final = "*"  # ALLOWED_TENANTS=* (or msteams:*, slack:*): any tenant, said on purpose
# A Teams tenant id (an Entra ID directory's GUID) and a Slack team id, as a bare
# ALLOWED_TENANTS entry is recognised; anything else needs its platform: prefix.
_GUID = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_SLACK_TEAM_ID = re.compile(r"T[A-Z0-9]{2,}")
_TENANT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SLACK_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{2,}")
# A SQLAlchemy URL, read without importing SQLAlchemy (classify starts without it).
_DATABASE_URL = re.compile(r"^(?P<drivername>[A-Za-z][\w]*(?:\+\w+)?)://(?P<rest>.*)$", re.DOTALL)

# Set while load_settings builds a Settings: only its values (and the .env file) count then.
_reading_only_given_values: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "_reading_only_given_values", default=False
)


class SettingsError(Exception):
    """The settings cannot be used; the message has one line per problem, naming the env var."""

    def __init__(self, problems: list[str]) -> None:
        """Collect the problems, one line each."""
        super().__init__("\n".join(problems))
        self.problems = problems


class Settings(BaseSettings):
    """Everything the bot reads from its environment. Frozen; build it with ``load_settings``."""

    model_config = SettingsConfigDict(
        frozen=True,
        env_file=DEFAULT_ENV_FILE,
        env_file_encoding="utf-8",
        case_sensitive=False,
        extra="ignore",
        hide_input_in_errors=True,  # a bad secret must not show up in an error message
    )

    database_url: str = DEFAULT_DATABASE_URL
    # The longest any wait on the database lasts (a connection, a statement, a lock): a stalled
    # database fails a turn in seconds, and the user is asked to try again in a moment.
    database_timeout_seconds: float = 5.0
    # Seen event ids, conversations idle and tickets resolved longer ago are purged; 0 keeps all.
    retention_days: int = 30
    org_domains: Annotated[tuple[str, ...], NoDecode] = ()
    log_level: LogLevel = "INFO"
    host: str = "127.0.0.1"
    port: int = 3978

    # Teams (Azure Bot registration). None set: local mode, for the Agents Playground, answering
    # loopback addresses only unless TEAMS_LOCAL_ALLOW_REMOTE.
    microsoft_app_id: str | None = None
    microsoft_app_password: SecretStr | None = None
    microsoft_app_tenant_id: str | None = None
    microsoft_app_type: Literal["MultiTenant", "SingleTenant", "UserAssignedMSI"] = "MultiTenant"
    teams_local_allow_remote: bool = False

    # Slack. No bot token and signing secret: the Slack endpoint is off.
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None  # set: Socket Mode instead of /slack/events
    slack_api_url: str = "https://slack.com/api/"

    # Files people send (a bounce saved as .eml): the largest the bot downloads, and the only
    # hosts it downloads them from (bot/hosts.py: ".domain", "host[:port]", "http://host:port").
    file_max_bytes: int = 5 * 1024 * 1024
    teams_attachment_hosts: Annotated[tuple[str, ...], NoDecode] = TEAMS_ATTACHMENT_HOSTS
    slack_file_hosts: Annotated[tuple[str, ...], NoDecode] = SLACK_FILE_HOSTS

    # Who may use the bot: Teams tenant ids and Slack team ids, comma or space separated, each
    # "msteams:<id>" or "slack:<id>" (a bare GUID is a Teams tenant, a bare T... a Slack
    # team); "*" any. Unset: the app's own tenant where it knows one (see ``Tenants``).
    allowed_tenants: Annotated[tuple[str, ...], NoDecode] = ()

    # Tickets. ADMIN_USERS: "platform:user_id" (msteams:<AAD object id>, slack:U0123), comma or
    # space separated; they may act on tickets from anywhere (besides the admins' channel).
    admin_users: Annotated[tuple[str, ...], NoDecode] = ()
    slack_admin_channel: str | None = None  # a channel id (C0123ABC): the Slack admins' channel
    escalation_remind_minutes: int = 60  # an open ticket nobody took is announced again
    ticket_webhook_url: str | None = None  # every ticket event is POSTed here as signed JSON
    ticket_webhook_secret: SecretStr | None = None  # the HMAC-SHA256 key; required with the URL
    # The outbox (tickets' jobs, late replies): how long a claimed job stays one process's, the
    # lease renewed every third of it while it is delivered; a process that dies lets its jobs
    # go this long after its last renewal.
    job_lease_seconds: float = 10.0

    # A Slack delivery is kept in the store before it is acknowledged, leased to this process
    # for this long and renewed while its work runs: a process that dies leaves it to another
    # (or to the next start) once the lease has run out.
    kept_event_lease_seconds: int = 15
    # At most this many Slack deliveries are worked on at once in one process; the rest wait
    # in the store, acknowledged, and are taken oldest first as work ends. More does not make
    # the replies faster (the turns share one event loop and one database): it only makes every
    # reply of a burst late and the memory grow with it.
    slack_max_work_in_flight: int = 16

    # Exchange Online (bot/exchange/): an app registration with Exchange.ManageAsApp and an
    # Exchange RBAC role. None set: the bot reads no recipient and changes none.
    exchange_tenant_id: str | None = None
    exchange_client_id: str | None = None
    exchange_client_secret: SecretStr | None = None
    exchange_certificate_path: str | None = None  # a PEM holding the private key and certificate
    exchange_authority_url: str = EXCHANGE_AUTHORITY_URL
    exchange_api_url: str = EXCHANGE_API_URL
    exchange_ca_bundle: str | None = None  # a PEM of CAs to trust instead of the system's
    exchange_timeout_seconds: float = 30.0  # one cmdlet, its pages and retries included

    @property
    def exchange_enabled(self) -> bool:
        """Whether Exchange Online is configured (a tenant, an app and its credential)."""
        return bool(
            self.exchange_tenant_id
            and self.exchange_client_id
            and (self.exchange_client_secret or self.exchange_certificate_path)
        )

    @property
    def teams_credentials(self) -> bool:
        """Whether an Azure Bot registration is configured (otherwise: local mode)."""
        return bool(self.microsoft_app_id)

    @property
    def slack_enabled(self) -> bool:
        """Whether Slack is configured (a bot token and a signing secret or an app token)."""
        return bool(self.slack_bot_token and (self.slack_signing_secret or self.slack_app_token))

    @property
    def slack_settings_given(self) -> bool:
        """Whether any of Slack's three credentials is set (none: Slack is off on purpose)."""
        return bool(self.slack_bot_token or self.slack_signing_secret or self.slack_app_token)

    @property
    def slack_missing(self) -> str | None:
        """Why Slack is off, naming exactly what is missing; None when it is configured."""
        if self.slack_enabled:
            return None
        if not self.slack_settings_given:
            return (
                "set SLACK_BOT_TOKEN, and SLACK_SIGNING_SECRET (HTTP at /slack/events) "
                "or SLACK_APP_TOKEN (Socket Mode)"
            )
        if self.slack_bot_token:
            return "SLACK_SIGNING_SECRET is missing (or set SLACK_APP_TOKEN for Socket Mode)"
        return "SLACK_BOT_TOKEN is missing (the Bot User OAuth Token, xoxb-...)"

    @field_validator("slack_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise PydanticCustomError("url", "must start with https:// (or http:// for tests)")
        return value if value.endswith("/") else value + "/"

    @field_validator("database_timeout_seconds")
    @classmethod
    def _timeout(cls, value: float) -> float:
        if not 0 < value <= 120:
            raise PydanticCustomError("timeout", "must be more than 0 and at most 120 seconds")
        return value

    @field_validator("retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value < 0:
            raise PydanticCustomError("retention", "must be 0 (keep everything) or more days")
        return value

    @field_validator("file_max_bytes", "escalation_remind_minutes")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise PydanticCustomError("positive", "must be a positive number")
        return value

    @field_validator("job_lease_seconds")
    @classmethod
    def _sensible_lease(cls, value: float) -> float:
        if not 1.0 <= value <= 3600.0:
            raise PydanticCustomError("lease", "must be between 1 and 3600 seconds")
        return value

    @field_validator("kept_event_lease_seconds")
    @classmethod
    def _lease_in_range(cls, value: int) -> int:
        if not 2 <= value <= 300:
            raise PydanticCustomError("lease", "must be between 2 and 300 seconds")
        return value

    @field_validator("slack_max_work_in_flight")
    @classmethod
    def _in_flight_in_range(cls, value: int) -> int:
        if not 1 <= value <= 1000:
            raise PydanticCustomError("in_flight", "must be between 1 and 1000")
        return value

    @field_validator("teams_attachment_hosts", "slack_file_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part for part in _LIST_SEPARATORS.split(value) if part]
        return value

    @field_validator("teams_attachment_hosts", "slack_file_hosts")
    @classmethod
    def _valid_hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        problems = []
        for entry in value:
            try:
                parse_entry(entry)
            except HostEntryError as error:
                problems.append(str(error))
        if problems:
            raise PydanticCustomError(
                "hosts",
                "{problems}; write .example.com, host[:port] or http://host:port, comma-separated",
                {"problems": "; ".join(problems)},
            )
        return tuple(dict.fromkeys(entry.strip().lower() for entry in value))

    @field_validator("admin_users", "allowed_tenants", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part for part in _LIST_SEPARATORS.split(value) if part]
        return value

    @field_validator("admin_users")
    @classmethod
    def _valid_admins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        """Every entry names its platform: a bare id would be anyone's on another channel
        (Web Chat lets the client choose its user id), so it is refused, not guessed."""
        entries = [user.strip() for user in value]
        bad = [user for user in entries if _admin_entry(user) is None]
        if bad:
            raise PydanticCustomError(
                "admin_users",
                "{users}: each entry must be platform:user_id, e.g. msteams:<AAD object id> "
                "or slack:U0123ABC (platform one of {platforms})",
                {
                    "users": ", ".join(f'"{user}"' for user in bad),
                    "platforms": ", ".join(ADMIN_PLATFORMS),
                },
            )
        return tuple(dict.fromkeys(entries))

    @field_validator("allowed_tenants")
    @classmethod
    def _valid_tenants(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        entries = [entry.strip() for entry in value]
        bad = [entry for entry in entries if tenant_entry(entry) is None]
        if bad:
            raise PydanticCustomError(
                "allowed_tenants",
                "{entries}: each entry must be msteams:<tenant id>, slack:<team id>, a bare "
                "Teams tenant GUID, a bare Slack team id (T0123ABC), or *",
                {"entries": ", ".join(f'"{entry}"' for entry in bad)},
            )
        return tuple(dict.fromkeys(entries))

    @field_validator("slack_admin_channel", mode="before")
    @classmethod
    def _slack_channel_id(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip() or None
            if value is not None and not _SLACK_CHANNEL_ID.fullmatch(value):
                raise PydanticCustomError(
                    "slack_channel",
                    "must be a Slack channel id such as C0123ABCD (not a channel name)",
                )
        return value

    @field_validator("ticket_webhook_url", mode="before")
    @classmethod
    def _webhook_url(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip() or None
            if value is not None and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
                raise PydanticCustomError(
                    "url", "must be an http:// or https:// URL, e.g. https://tracker.example/hook"
                )
        return value

    @field_validator("ticket_webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if info.data.get("ticket_webhook_url") and not (value and value.get_secret_value()):
            raise PydanticCustomError(
                "required", "required when TICKET_WEBHOOK_URL is set (the key that signs events)"
            )
        return value

    @field_validator(
        "exchange_tenant_id",
        "exchange_client_id",
        "exchange_certificate_path",
        "exchange_ca_bundle",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return (value.strip() or None) if isinstance(value, str) else value

    @field_validator("exchange_authority_url", "exchange_api_url")
    @classmethod
    def _https_url(cls, value: str) -> str:
        if not re.fullmatch(r"https://[^\s/?#]+(/[^\s?#]*)?", value.strip()):
            raise PydanticCustomError("url", "must be an https:// URL without a query")
        return value.strip().rstrip("/")

    @field_validator("exchange_certificate_path", "exchange_ca_bundle")
    @classmethod
    def _readable_file(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).is_file():
            raise PydanticCustomError("file", "{path}: no such file", {"path": value})
        return value

    @field_validator("exchange_timeout_seconds")
    @classmethod
    def _exchange_timeout(cls, value: float) -> float:
        if not 1 <= value <= 300:
            raise PydanticCustomError("timeout", "must be between 1 and 300 seconds")
        return value

    @model_validator(mode="after")
    def _exchange_whole_or_none(self) -> Settings:
        """Exchange is all set or not at all: a half-set one is a mistake, named here, never
        taken for "off"."""
        missing = _exchange_missing(self)
        if missing:
            raise PydanticCustomError("exchange", "{missing}", {"missing": missing})
        return self

    def is_listed_admin(self, platform: str, user_id: str) -> bool:
        """Whether ADMIN_USERS names this user on this platform (``platform:user_id``)."""
        return bool(user_id) and f"{platform}:{user_id}" in self.admin_users

    def listed_admins(self, platform: str) -> tuple[str, ...]:
        """The user ids ADMIN_USERS names on ``platform``."""
        return tuple(
            rest
            for prefix, _, rest in (entry.partition(":") for entry in self.admin_users)
            if prefix == platform
        )

    def listed_tenants(self) -> dict[str, frozenset[str]]:
        """The tenants ALLOWED_TENANTS names, per platform (``*`` for any); a platform it does
        not name is absent (its default applies: see ``bot.tenants.Tenants``)."""
        listed: dict[str, set[str]] = {}
        for entry in self.allowed_tenants:
            for platform, tenant in tenant_entry(entry) or ():
                listed.setdefault(platform, set()).add(tenant)
        return {platform: frozenset(tenants) for platform, tenants in listed.items()}

    def configured_admin_channels(self) -> dict[str, dict[str, Any]]:
        """The admins' channels the settings name, per platform (SLACK_ADMIN_CHANNEL, as
        ``{"channel": "C0123"}``): a registered channel of that platform takes its place."""
        if self.slack_admin_channel:
            return {Platform.SLACK: {"channel": self.slack_admin_channel}}
        return {}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Env vars over .env, as usual; under load_settings, its values over .env and no more."""
        if _reading_only_given_values.get():
            return (init_settings, dotenv_settings)
        return (init_settings, env_settings, dotenv_settings, file_secret_settings)

    @field_validator("database_url")
    @classmethod
    def _async_database_url(cls, value: str) -> str:
        match = _DATABASE_URL.match(value.strip())
        if match is None:
            raise PydanticCustomError(
                "database_url",
                "not a database URL; expected e.g. {example}",
                {"example": DEFAULT_DATABASE_URL},
            )
        drivername = match.group("drivername")
        backend, _, driver = drivername.partition("+")
        wanted = _ASYNC_DRIVERS.get(backend)
        if wanted is None:
            raise PydanticCustomError(
                "database_url",
                "{backend} is not supported; use sqlite+aiosqlite:// or postgresql+asyncpg://",
                {"backend": backend},
            )
        if driver != wanted:
            raise PydanticCustomError(
                "database_url",
                "needs the async driver: write {backend}+{wanted}:// (not {given}://)",
                {"backend": backend, "wanted": wanted, "given": drivername},
            )
        return value.strip()

    @field_validator("org_domains", mode="before")
    @classmethod
    def _split_domains(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part for part in _LIST_SEPARATORS.split(value) if part]
        if isinstance(value, list | tuple):
            return [str(part).strip().lower().rstrip(".") for part in value]
        return value

    @field_validator("org_domains")
    @classmethod
    def _valid_domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [domain for domain in value if not _is_domain_name(domain)]
        if bad:
            raise PydanticCustomError(
                "domain_name",
                "{domains} {verb}",
                {
                    "domains": ", ".join(f'"{domain}"' for domain in bad),
                    "verb": "is not a domain name" if len(bad) == 1 else "are not domain names",
                },
            )
        return tuple(dict.fromkeys(value))  # drop repeats, keep the order

    @field_validator("log_level", mode="before")
    @classmethod
    def _known_log_level(cls, value: Any) -> Any:
        if isinstance(value, str):
            level = value.strip().upper()
            if level not in LOG_LEVELS:
                raise PydanticCustomError(
                    "log_level",
                    '"{given}" is not one of {levels}',
                    {"given": value, "levels": ", ".join(LOG_LEVELS)},
                )
            return level
        return value

    @field_validator("host")
    @classmethod
    def _some_host(cls, value: str) -> str:
        if not value.strip():
            raise PydanticCustomError("host", "must not be empty")
        return value.strip()

    @field_validator("port")
    @classmethod
    def _port_in_range(cls, value: int) -> int:
        if not 1 <= value <= 65535:
            raise PydanticCustomError("port", "must be between 1 and 65535")
        return value

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """The usual repr, with every URL's password and query hidden (SecretStr hides itself)."""
        for name, value in super().__repr_args__():
            keep_path = name not in _ADDRESSES_OF_OTHERS
            yield name, (hide_url(value, path=keep_path) if isinstance(value, str) else value)


def _admin_entry(entry: str) -> tuple[str, str] | None:
    """(platform, user id) of an ADMIN_USERS entry; None when it names no known platform."""
    prefix, colon, rest = entry.partition(":")
    if colon and prefix in ADMIN_PLATFORMS and rest.strip() and rest == rest.strip():
        return prefix, rest
    return None


def tenant_entry(entry: str) -> tuple[tuple[str, str], ...] | None:
    """The (platform, tenant) pairs an ALLOWED_TENANTS entry stands for; None if it is not
    one. ``*`` is any tenant on every platform; a bare GUID is a Teams tenant, a bare
    ``T...`` a Slack team: the two cannot be mistaken."""
    if entry == ANY_TENANT:
        return tuple((platform, ANY_TENANT) for platform in TENANT_PLATFORMS)
    prefix, colon, rest = entry.partition(":")
    if colon:
        if prefix in TENANT_PLATFORMS and (rest == ANY_TENANT or _TENANT_ID.fullmatch(rest)):
            return ((prefix, rest.lower() if prefix == Platform.TEAMS else rest),)
        return None
    if _GUID.fullmatch(entry):
        return ((Platform.TEAMS, entry.lower()),)
    if _SLACK_TEAM_ID.fullmatch(entry):
        return ((Platform.SLACK, entry),)
    return None


def _exchange_missing(settings: Settings) -> str:
    """What a half-set Exchange lacks, naming the env vars; "" when it is whole or unset. The
    certificate's PEM is read too: a key without its certificate (or the reverse) is caught at
    start, not at the first look-up."""
    secret = settings.exchange_client_secret
    credential = bool(secret and secret.get_secret_value()) or bool(
        settings.exchange_certificate_path
    )
    given = {
        "EXCHANGE_TENANT_ID": bool(settings.exchange_tenant_id),
        "EXCHANGE_CLIENT_ID": bool(settings.exchange_client_id),
        "EXCHANGE_CLIENT_SECRET or EXCHANGE_CERTIFICATE_PATH": credential,
    }
    if not any(given.values()):
        return ""
    if settings.exchange_client_secret and settings.exchange_certificate_path:
        return "EXCHANGE_CLIENT_SECRET and EXCHANGE_CERTIFICATE_PATH are both set: set one"
    missing = [name for name, set_ in given.items() if not set_]
    if missing:
        said = "; ".join(f"{name} is missing" for name in missing)
        return f"Exchange is half set: {said} (or unset them all to leave Exchange off)"
    if settings.exchange_certificate_path:
        return _pem_problem(Path(settings.exchange_certificate_path))
    return ""


def _pem_problem(path: Path) -> str:
    """Why EXCHANGE_CERTIFICATE_PATH cannot sign in; "" when it holds a key and a certificate.
    cryptography is imported here: classify starts without it."""
    from cryptography import x509  # noqa: PLC0415 - see the docstring
    from cryptography.hazmat.primitives.serialization import (  # noqa: PLC0415
        load_pem_private_key,
    )

    data = path.read_bytes()
    try:
        load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        return f"EXCHANGE_CERTIFICATE_PATH: {path} holds no unencrypted PEM private key"
    try:
        x509.load_pem_x509_certificate(data)
    except ValueError:
        return f"EXCHANGE_CERTIFICATE_PATH: {path} holds no PEM certificate"
    return ""


def env_var(field_name: str) -> str:
    """The env var that sets a Settings field."""
    return field_name.upper()


def load_settings(
    env: Mapping[str, str] | None = None, env_file: str | Path | None = DEFAULT_ENV_FILE
) -> Settings:
    """Read the settings from ``env`` (default: the process environment) over ``env_file``.

    With ``env`` given, only that mapping counts, and a .env file only if ``env_file`` is passed.
    Raises SettingsError, one line per problem.
    """
    if env is None:
        env = os.environ
    elif env_file is DEFAULT_ENV_FILE:
        env_file = None
    given = {key.lower(): value for key, value in env.items()}
    values: dict[str, Any] = {
        name: given[env_var(name).lower()]
        for name in Settings.model_fields
        if env_var(name).lower() in given
    }
    values["_env_file"] = env_file
    token = _reading_only_given_values.set(True)
    try:
        return Settings(**values)
    except ValidationError as error:
        raise SettingsError(_problems(error)) from None
    except _PydanticSettingsError as error:
        raise SettingsError([str(error)]) from None
    finally:
        _reading_only_given_values.reset(token)


def describe(settings: Settings) -> dict[str, str]:
    """The settings by env var, fit for the start-up log: secrets masked, passwords hidden."""
    shown: dict[str, str] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if value is None:
            text = NOT_SET
        elif isinstance(value, SecretStr):
            text = MASK if value.get_secret_value() else NOT_SET
        elif isinstance(value, str):
            text = hide_url(value, path=name not in _ADDRESSES_OF_OTHERS)
        elif isinstance(value, tuple):
            text = ",".join(str(part) for part in value) or NOT_SET
        else:
            text = str(value)
        shown[env_var(name)] = text
    return shown


def _problems(error: ValidationError) -> list[str]:
    problems = []
    for problem in error.errors(include_url=False):
        field = str(problem["loc"][0]) if problem["loc"] else ""
        reason = _reason(problem["type"], problem["msg"])
        # A check of several settings together (Exchange's) names them in its own words.
        problems.append(f"{env_var(field)}: {reason}" if field else reason)
    return problems


def _reason(kind: str, message: str) -> str:
    if kind == "int_parsing":
        return "must be a whole number"
    return message


def _is_domain_name(domain: str) -> bool:
    try:
        ascii_form = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    labels = ascii_form.split(".")
    return (
        len(ascii_form) <= 253
        and len(labels) >= 2
        and all(_DOMAIN_LABEL.fullmatch(label) for label in labels)
        and _TOP_LEVEL.fullmatch(labels[-1]) is not None
    )


#: URL settings whose path is someone else's and may hold a secret: logged as scheme and host.
_ADDRESSES_OF_OTHERS: Final = frozenset({"ticket_webhook_url"})


def hide_url(url: str, *, path: bool = True) -> str:
    """``url`` fit for logs: its password, every query value and any fragment hidden; text that
    is no URL (no ``scheme://``) as it is. ``path=False`` hides the path too, for an address
    someone else made up (a webhook's: Slack's incoming webhooks and many trackers put their
    secret in the path).

    The userinfo ends at the last ``@`` before the query, so a password holding ``@``, ``:`` or
    ``/`` (raw or URL-encoded) is hidden whole, never cut at its first ``@``.
    """
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url
    rest, hash_mark, _fragment = rest.partition("#")
    location, question_mark, query = rest.partition("?")
    if "@" in location:
        userinfo, _, host_and_path = location.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        location = f"{user}:{HIDDEN}@{host_and_path}" if colon else f"{user}@{host_and_path}"
    if not path:
        host, slash, rest_of_path = location.partition("/")
        location = f"{host}/{HIDDEN}" if slash and rest_of_path else host
    shown = f"{scheme}://{location}"
    if question_mark:
        shown += "?" + "&".join(_hide_query_value(part) for part in query.split("&"))
    if hash_mark:
        shown += f"#{HIDDEN}"
    return shown


def _hide_query_value(part: str) -> str:
    name, equals, _value = part.partition("=")
    return f"{name}={HIDDEN}" if equals else HIDDEN


__all__ = [
    "DEFAULT_DATABASE_URL",
    "DEFAULT_ENV_FILE",
    "LogLevel",
    "Settings",
    "SettingsError",
    "describe",
    "env_var",
    "hide_url",
    "load_settings",
]
