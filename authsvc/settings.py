"""Service configuration: one typed object, built from the environment once at start-up.

Nothing else in the package reads `os.environ`; everything that needs a setting is handed this object.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from authsvc import gateway_secret
from authsvc.mail.settings import MailSettings
from authsvc.supervisor import parse_workers

DEFAULT_DATA_DIR = Path("./data")
_SECRET_NAMES = ("password", "secret")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MIN_INTROSPECTION_SECRET_BYTES = 32
MAX_DRAIN_SECONDS = 60.0  # a longer drain is a stop that looks hung


class SettingsError(ValueError):
    """A configuration variable has a value the service cannot use."""


@dataclass(frozen=True)
class Settings:
    grpc_listen: str = "127.0.0.1:50051"
    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str = ""
    keys_dir: Path | None = None
    bcrypt_rounds: int = 12
    hash_threads: int = 2
    access_ttl_seconds: int = 900
    refresh_ttl_seconds: int = 2_592_000
    refresh_grace_seconds: int = 10
    issuer: str = "authsvc"
    audience: str = "authsvc"
    client_id: str = "authsvc"  # the RFC 9068 `client_id` claim: this service's own name
    # Running servers re-read the keys directory this often; a new key signs only after being
    # published this long (at least the verifiers' JWKS cache lifetime plus one reload).
    keys_reload_seconds: float = 30.0
    key_activation_delay_seconds: int = 600
    # Who is believed about the client's address (x-forwarded-for) and user agent: the REST gateway, known
    # by the secret in this file (default: gateway.secret in the data dir, created at first start) or,
    # under mutual TLS, by a client certificate naming one of gateway_tls_names (authsvc/gateway_secret.py);
    # and any peer in trusted_proxies (other proxies; empty by default). Everyone else is recorded and
    # throttled at its own peer address.
    gateway_secret_file: Path | None = None
    gateway_tls_names: tuple[str, ...] = ()
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(default=())
    db_pool_size: int = 10
    db_timeout_seconds: float = 5.0
    migrate_on_start: bool = True
    shutdown_grace_seconds: float = 10.0
    # On SIGTERM the server says NOT_SERVING, then keeps serving this long before it stops accepting:
    # clients that watch its health (the gateway, authsvc_client) move their calls to other replicas.
    drain_seconds: float = 1.0
    # Serving processes on the one gRPC port (authsvc/app/workers.py); 1: this process serves.
    workers: int = 1
    # Throttling (authsvc/domain/throttling.py). The per-account limit counts one account at one address.
    login_window_seconds: int = 300
    login_max_failures_per_account: int = 5
    login_max_failures_per_address: int = 50
    login_max_failures_across_addresses: int = 100  # one account, from addresses it is not known at
    login_across_addresses_window_seconds: int = 3600
    login_known_address_seconds: int = 2_592_000  # an address a login succeeded at stays known this long
    register_window_seconds: int = 3600
    register_max_per_address: int = 10
    register_max_per_window: int = 1000  # from all addresses together
    redis_url: str = ""
    redis_key_prefix: str = "authsvc:"
    # Bearer that Introspect callers must present (at least 32 bytes); empty: Introspect answers loopback
    # callers only (authsvc/domain/introspection_guard.py). Wrong secrets are throttled per address.
    introspection_secret: str = ""
    introspection_window_seconds: int = 300
    introspection_max_failures_per_address: int = 10
    # Operations (docs/operations.md): TLS, metrics and logs.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_client_ca_file: Path | None = None  # set: mutual TLS, every client must show a cert it signed
    allow_insecure: bool = False  # plain text on a non-loopback address, on purpose
    metrics_listen: str = ""  # empty: no metrics listener
    log_level: str = "INFO"
    # Mail (authsvc/mail/settings.py checks these): without an SMTP URL, .eml files in the data dir's `mail`
    # folder, so `make run` needs no mail server; links in mail start with public_url.
    smtp_url: str = ""
    mail_from: str = ""
    public_url: str = ""
    mail_retry_seconds: float = 30.0
    mail_templates_dir: Path | None = None
    # Password reset and email verification (authsvc/domain/recovery.py): the mailed tokens' lifetimes,
    # and the throttles (every ForgotPassword counts, for its email and its address; every ResetPassword
    # with a wrong token counts for its address; every verification request for its user).
    reset_token_ttl_seconds: int = 1800
    verify_token_ttl_seconds: int = 86_400
    forgot_window_seconds: int = 3600
    forgot_max_per_email: int = 5
    forgot_max_per_address: int = 20
    reset_window_seconds: int = 900
    reset_max_failures_per_address: int = 10
    verify_request_window_seconds: int = 3600
    verify_request_max_per_user: int = 5

    def __post_init__(self) -> None:
        if not self.database_url:
            db_path = self.data_dir / "authsvc.db"
            object.__setattr__(self, "database_url", f"sqlite+aiosqlite:///{db_path}")
        if self.keys_dir is None:
            object.__setattr__(self, "keys_dir", self.data_dir / "keys")
        if self.gateway_secret_file is None:
            object.__setattr__(self, "gateway_secret_file", self.data_dir / gateway_secret.FILE_NAME)
        if not 4 <= self.bcrypt_rounds <= 31:
            raise SettingsError("AUTHSVC_BCRYPT_ROUNDS must be between 4 and 31")
        for name in (
            "access_ttl_seconds",
            "refresh_ttl_seconds",
            "hash_threads",
            "db_pool_size",
            "db_timeout_seconds",
            "login_window_seconds",
            "login_max_failures_per_account",
            "login_max_failures_per_address",
            "login_max_failures_across_addresses",
            "login_across_addresses_window_seconds",
            "login_known_address_seconds",
            "register_window_seconds",
            "register_max_per_address",
            "register_max_per_window",
            "reset_token_ttl_seconds",
            "verify_token_ttl_seconds",
            "forgot_window_seconds",
            "forgot_max_per_email",
            "forgot_max_per_address",
            "reset_window_seconds",
            "reset_max_failures_per_address",
            "verify_request_window_seconds",
            "verify_request_max_per_user",
        ):
            if getattr(self, name) <= 0:
                raise SettingsError(f"AUTHSVC_{name.upper()} must be positive")
        if self.keys_reload_seconds <= 0:
            raise SettingsError("AUTHSVC_KEYS_RELOAD_SECONDS must be positive")
        if self.key_activation_delay_seconds < 0:
            raise SettingsError("AUTHSVC_KEY_ACTIVATION_DELAY_SECONDS must be 0 or more")
        if self.refresh_grace_seconds < 0:
            raise SettingsError("AUTHSVC_REFRESH_GRACE_SECONDS must be 0 or more")
        if not 0 <= self.drain_seconds <= MAX_DRAIN_SECONDS:
            raise SettingsError(f"AUTHSVC_DRAIN_SECONDS must be between 0 and {MAX_DRAIN_SECONDS:g}")
        if self.workers <= 0:
            raise SettingsError("AUTHSVC_WORKERS (serve --workers) must be a positive number or auto")
        self._check_introspection()
        self._check_operations()
        self._check_mail()

    def _check_mail(self) -> None:
        try:
            self.mail  # noqa: B018 (built to check it: an unusable value stops the start)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None

    @property
    def mail(self) -> MailSettings:
        """The mail settings: where mail goes, who it is from, and the links' base."""
        return MailSettings(
            self.smtp_url, self.mail_from, self.public_url, self.mail_retry_seconds, self.mail_templates_dir
        )

    def _check_introspection(self) -> None:
        for name in ("introspection_window_seconds", "introspection_max_failures_per_address"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"AUTHSVC_{name.upper()} must be positive")
        length = len(self.introspection_secret.encode("utf-8", "surrogateescape"))
        if 0 < length < MIN_INTROSPECTION_SECRET_BYTES:
            raise SettingsError(
                f"AUTHSVC_INTROSPECTION_SECRET must be at least {MIN_INTROSPECTION_SECRET_BYTES} bytes, "
                f"got {length}: make one with `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )

    def _check_operations(self) -> None:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise SettingsError("AUTHSVC_TLS_CERT_FILE and AUTHSVC_TLS_KEY_FILE must be set together")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise SettingsError(
                "AUTHSVC_TLS_CLIENT_CA_FILE needs AUTHSVC_TLS_CERT_FILE and AUTHSVC_TLS_KEY_FILE"
            )
        if self.gateway_tls_names and self.tls_client_ca_file is None:
            raise SettingsError(
                "AUTHSVC_GATEWAY_TLS_NAMES needs mutual TLS (AUTHSVC_TLS_CLIENT_CA_FILE): without it no "
                "client certificate is checked"
            )
        if self.log_level.upper() not in _LOG_LEVELS:
            raise SettingsError(f"AUTHSVC_LOG_LEVEL must be one of {', '.join(_LOG_LEVELS)}")
        object.__setattr__(self, "log_level", self.log_level.upper())
        _, colon, port = self.metrics_listen.rpartition(":")
        if self.metrics_listen and not (colon and port.isdigit() and int(port) <= 65535):
            raise SettingsError(f"AUTHSVC_METRICS_LISTEN must be HOST:PORT, got {self.metrics_listen!r}")
        if not self.tls_enabled and not self.allow_insecure and not is_loopback(self.grpc_listen):
            raise SettingsError(
                f"AUTHSVC_GRPC_LISTEN={self.grpc_listen} is not a loopback address and TLS is off: set "
                "AUTHSVC_TLS_CERT_FILE and AUTHSVC_TLS_KEY_FILE, or AUTHSVC_ALLOW_INSECURE=true to serve "
                "tokens in plain text on purpose"
            )

    @property
    def tls_enabled(self) -> bool:
        return self.tls_cert_file is not None

    @property
    def jwks_max_age_seconds(self) -> int:
        """How long a verifier may cache the JWKS: a new key must reach its cache before it signs
        (published for the activation delay, found by replicas within one reload), and a revoked key
        must leave it soon; never more than five minutes."""
        return max(0, min(300, int(self.key_activation_delay_seconds - self.keys_reload_seconds)))

    @property
    def signing_keys_dir(self) -> Path:
        assert self.keys_dir is not None  # set in __post_init__
        return self.keys_dir

    @property
    def gateway_secret_path(self) -> Path:
        assert self.gateway_secret_file is not None  # set in __post_init__
        return self.gateway_secret_file

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read the AUTHSVC_* variables; unset ones keep their defaults. Raise SettingsError on bad values."""
        values: dict[str, object] = {}
        converters: dict[str, tuple[str, Callable[[str], object]]] = {
            "AUTHSVC_GRPC_LISTEN": ("grpc_listen", str),
            "AUTHSVC_DATA_DIR": ("data_dir", Path),
            "AUTHSVC_DATABASE_URL": ("database_url", str),
            "AUTHSVC_KEYS_DIR": ("keys_dir", Path),
            "AUTHSVC_BCRYPT_ROUNDS": ("bcrypt_rounds", int),
            "AUTHSVC_HASH_THREADS": ("hash_threads", int),
            "AUTHSVC_ACCESS_TTL_SECONDS": ("access_ttl_seconds", int),
            "AUTHSVC_REFRESH_TTL_SECONDS": ("refresh_ttl_seconds", int),
            "AUTHSVC_REFRESH_GRACE_SECONDS": ("refresh_grace_seconds", int),
            "AUTHSVC_ISSUER": ("issuer", str),
            "AUTHSVC_AUDIENCE": ("audience", str),
            "AUTHSVC_CLIENT_ID": ("client_id", str),
            "AUTHSVC_KEYS_RELOAD_SECONDS": ("keys_reload_seconds", float),
            "AUTHSVC_KEY_ACTIVATION_DELAY_SECONDS": ("key_activation_delay_seconds", int),
            "AUTHSVC_TRUSTED_PROXIES": ("trusted_proxies", _parse_networks),
            "AUTHSVC_GATEWAY_SECRET_FILE": ("gateway_secret_file", Path),
            "AUTHSVC_GATEWAY_TLS_NAMES": ("gateway_tls_names", _parse_names),
            "AUTHSVC_DB_POOL_SIZE": ("db_pool_size", int),
            "AUTHSVC_DB_TIMEOUT_SECONDS": ("db_timeout_seconds", float),
            "AUTHSVC_MIGRATE_ON_START": ("migrate_on_start", _parse_bool),
            "AUTHSVC_SHUTDOWN_GRACE_SECONDS": ("shutdown_grace_seconds", float),
            "AUTHSVC_DRAIN_SECONDS": ("drain_seconds", float),
            "AUTHSVC_WORKERS": ("workers", parse_workers),
            "AUTHSVC_LOGIN_WINDOW_SECONDS": ("login_window_seconds", int),
            "AUTHSVC_LOGIN_MAX_FAILURES_PER_ACCOUNT": ("login_max_failures_per_account", int),
            "AUTHSVC_LOGIN_MAX_FAILURES_PER_ADDRESS": ("login_max_failures_per_address", int),
            "AUTHSVC_LOGIN_MAX_FAILURES_ACROSS_ADDRESSES": ("login_max_failures_across_addresses", int),
            "AUTHSVC_LOGIN_ACROSS_ADDRESSES_WINDOW_SECONDS": ("login_across_addresses_window_seconds", int),
            "AUTHSVC_LOGIN_KNOWN_ADDRESS_SECONDS": ("login_known_address_seconds", int),
            "AUTHSVC_REGISTER_WINDOW_SECONDS": ("register_window_seconds", int),
            "AUTHSVC_REGISTER_MAX_PER_ADDRESS": ("register_max_per_address", int),
            "AUTHSVC_REGISTER_MAX_PER_WINDOW": ("register_max_per_window", int),
            "AUTHSVC_REDIS_URL": ("redis_url", str),
            "AUTHSVC_REDIS_KEY_PREFIX": ("redis_key_prefix", str),
            "AUTHSVC_INTROSPECTION_SECRET": ("introspection_secret", str),
            "AUTHSVC_INTROSPECTION_WINDOW_SECONDS": ("introspection_window_seconds", int),
            "AUTHSVC_INTROSPECTION_MAX_FAILURES_PER_ADDRESS": ("introspection_max_failures_per_address", int),
            "AUTHSVC_TLS_CERT_FILE": ("tls_cert_file", Path),
            "AUTHSVC_TLS_KEY_FILE": ("tls_key_file", Path),
            "AUTHSVC_TLS_CLIENT_CA_FILE": ("tls_client_ca_file", Path),
            "AUTHSVC_ALLOW_INSECURE": ("allow_insecure", _parse_bool),
            "AUTHSVC_METRICS_LISTEN": ("metrics_listen", str),
            "AUTHSVC_LOG_LEVEL": ("log_level", str),
            "AUTHSVC_SMTP_URL": ("smtp_url", str),
            "AUTHSVC_MAIL_FROM": ("mail_from", str),
            "AUTHSVC_PUBLIC_URL": ("public_url", str),
            "AUTHSVC_MAIL_RETRY_SECONDS": ("mail_retry_seconds", float),
            "AUTHSVC_MAIL_TEMPLATES_DIR": ("mail_templates_dir", Path),
            "AUTHSVC_RESET_TOKEN_TTL_SECONDS": ("reset_token_ttl_seconds", int),
            "AUTHSVC_VERIFY_TOKEN_TTL_SECONDS": ("verify_token_ttl_seconds", int),
            "AUTHSVC_FORGOT_WINDOW_SECONDS": ("forgot_window_seconds", int),
            "AUTHSVC_FORGOT_MAX_PER_EMAIL": ("forgot_max_per_email", int),
            "AUTHSVC_FORGOT_MAX_PER_ADDRESS": ("forgot_max_per_address", int),
            "AUTHSVC_RESET_WINDOW_SECONDS": ("reset_window_seconds", int),
            "AUTHSVC_RESET_MAX_FAILURES_PER_ADDRESS": ("reset_max_failures_per_address", int),
            "AUTHSVC_VERIFY_REQUEST_WINDOW_SECONDS": ("verify_request_window_seconds", int),
            "AUTHSVC_VERIFY_REQUEST_MAX_PER_USER": ("verify_request_max_per_user", int),
        }
        for variable, (name, convert) in converters.items():
            raw = environ.get(variable)
            if raw is None or raw == "":
                continue
            try:
                values[name] = convert(raw)
            except ValueError as exc:
                raise SettingsError(f"{variable}={raw!r} is not valid: {exc}") from exc
        return cls(**values)  # type: ignore[arg-type]

    def describe(self) -> dict[str, str]:
        """The effective configuration for the start-up log, with secrets masked."""
        shown: dict[str, str] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("database_url", "redis_url"):
                value = mask_url_password(str(value))
            elif f.name == "smtp_url":
                value = self.mail.describe()["smtp_url"]  # the password masked
            elif f.name == "gateway_secret_file":  # where the secret is, not the secret
                value = str(value)
            elif f.name == "gateway_tls_names":
                value = ",".join(value)
            elif any(word in f.name for word in _SECRET_NAMES):
                value = "***" if value else ""
            elif f.name == "trusted_proxies":
                value = ",".join(str(n) for n in value)
            shown[f.name] = str(value)
        return shown


def mask_url_password(url: str) -> str:
    """Hide the password of a database URL (`scheme://user:***@host/db`)."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in credentials:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


def is_loopback(listen: str) -> bool:
    """Whether a `HOST:PORT` listen address binds only the loopback interface (127.0.0.0/8, ::1)."""
    host = listen.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # "" (every interface) or a host name, which may resolve anywhere


def _parse_networks(raw: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in raw.split(",") if part.strip())


def _parse_names(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")
