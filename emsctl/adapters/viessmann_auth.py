"""Viessmann login: OAuth2 authorisation code with PKCE once, then a refresh token on disk.

The refresh token lives in one JSON file of the state directory, mode 0600, written
atomically; it never goes to the YAML, the database or the log.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from authlib.common.errors import AuthlibBaseError
from authlib.common.security import generate_token
from authlib.oauth2 import OAuth2Client
from authlib.oauth2.auth import ClientAuth

from emsctl.adapters import deadline
from emsctl.adapters.base import AdapterError, AuthFailed, BadResponse, DeviceUnreachable
from emsctl.config import Config, ViessmannConfig
from emsctl.ownership import give_to_directory_owner

log = logging.getLogger(__name__)

DEVICE = "viessmann"
LOGIN_HINT = "Viessmann login required: run `emsctl viessmann login`"
#: A pending login (verifier and state between printing the URL and pasting the code back)
#: is useless after this long: the IAM's codes expire within minutes.
PENDING_LOGIN_TTL = timedelta(minutes=15)
PENDING_FILE = "viessmann-login-pending.json"


class LoginRequired(AuthFailed):
    """No usable refresh token (never logged in, revoked, expired): a person must log in."""

    kind = "login_required"

    def __init__(self, detail: str, *, device: str | None = DEVICE) -> None:
        super().__init__(f"{LOGIN_HINT} ({detail})", device=device)
        self.detail = detail


# --------------------------------------------------------------------------- paths


def state_dir(config: Config) -> Path:
    """Where the daemon keeps its state: the directory of the database file."""
    return Path(config.store.path).expanduser().resolve().parent


def token_path(config: Config) -> Path:
    p = Path(config.viessmann.token_file).expanduser()
    return p if p.is_absolute() else state_dir(config) / p


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` atomically, readable by the owner only (0600); written by root
    (`sudo emsctl viessmann login`), it belongs to the directory's owner (emsctl.ownership)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        # os.open's mode is filtered by the umask; make sure no other bit survives either.
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fd = -1
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        give_to_directory_owner(tmp)
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


# --------------------------------------------------------------------------- token file


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """What the token file says: a usable token, or why there is none."""

    token: dict[str, Any] | None
    saved_at: str | None = None
    revoked_at: str | None = None
    revoked_reason: str | None = None


class TokenFile:
    """The refresh token on disk. Reloaded when the file changes (a new login while the
    daemon runs takes effect at the next call)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def stamp(self) -> tuple[int, int] | None:
        """Changes whenever the file is replaced; None when there is no file."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_ino)

    def load(self) -> TokenRecord | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise AuthFailed(
                f"cannot read the token file {self.path}: {exc}", device=DEVICE
            ) from None
        try:
            doc = json.loads(text)
            if not isinstance(doc, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            raise LoginRequired(f"the token file {self.path} is damaged: {exc}") from None
        token = doc.get("token")
        return TokenRecord(
            token=dict(token) if isinstance(token, dict) else None,
            saved_at=doc.get("saved_at"),
            revoked_at=doc.get("revoked_at"),
            revoked_reason=doc.get("revoked_reason"),
        )

    def save(self, token: Mapping[str, Any], now: datetime) -> None:
        keep = ("access_token", "refresh_token", "token_type", "expires_at", "expires_in", "scope")
        doc = {"token": {k: token[k] for k in keep if k in token}, "saved_at": now.isoformat()}
        write_private(self.path, json.dumps(doc, indent=1))
        log.info("Viessmann token saved to %s", self.path)

    def mark_revoked(self, reason: str, now: datetime) -> None:
        """Drop the dead tokens but remember why, so a restart does not try them again."""
        doc = {"token": None, "revoked_at": now.isoformat(), "revoked_reason": reason}
        write_private(self.path, json.dumps(doc, indent=1))


# --------------------------------------------------------------------------- OAuth client


class _HttpxClientAuth(httpx.Auth, ClientAuth):  # type: ignore[misc]
    """Authlib's client authentication (for a public client: client_id in the form body)
    applied to an httpx request."""

    requires_request_body = True

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        url, headers, body = self.prepare(
            request.method, str(request.url), request.headers, request.content
        )
        headers["Content-Length"] = str(len(body))
        yield httpx.Request(
            request.method, url, headers=headers, content=body, extensions=request.extensions
        )


class OAuthSession(OAuth2Client):  # type: ignore[misc]
    """Authlib's OAuth 2 client (authorisation URL with PKCE, code exchange, refresh, the
    IAM's error answers) over an httpx client, which also carries the API calls.

    Authlib's own httpx integration would do the same, but importing it loads Authlib's
    OpenID Connect support and with it joserfc and cryptography (a second OpenSSL), about
    11 MB for the daemon's life that a refresh-token grant never uses (docs/performance.md,
    "Memory"); that integration is also deprecated for plain httpx.
    """

    client_auth_class = _HttpxClientAuth

    def __init__(self, http: httpx.Client, **kwargs: Any) -> None:
        super().__init__(session=http, **kwargs)
        self.http = http

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> OAuthSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def oauth_client(
    cfg: ViessmannConfig,
    token: Mapping[str, Any] | None = None,
    *,
    transport: httpx.BaseTransport | None = None,
) -> OAuthSession:
    """The OAuth client for a public client (client_id in the body, no secret).

    Every request ends within `timeout_s` however slowly the peer answers (the API client
    bounds a whole call, token refresh included, by the same time).
    """
    http = deadline.client(
        cfg.timeout_s,
        timeout=httpx.Timeout(cfg.timeout_s, connect=min(cfg.timeout_s, 10.0)),
        headers={"User-Agent": "emsctl"},
        transport=transport,
    )
    return OAuthSession(
        http,
        client_id=cfg.client_id,
        token_endpoint_auth_method="none",
        scope=cfg.scope,
        redirect_uri=cfg.redirect_uri,
        code_challenge_method="S256",
        token=dict(token) if token else None,
    )


def token_request_error(exc: Exception, what: str) -> AdapterError | None:
    """Map a failure of the IAM's token endpoint to our typed errors (None: not ours)."""
    if isinstance(exc, AuthlibBaseError):
        error = str(getattr(exc, "error", "") or "")
        desc = str(getattr(exc, "description", "") or "")
        text = f"{error}: {desc}" if desc else error
        if error == "invalid_grant":
            return LoginRequired(f"the IAM refused the {what} ({text})")
        if error in ("invalid_client", "unauthorized_client"):
            return LoginRequired(f"the IAM refused client_id ({text}); check viessmann.client_id")
        return AuthFailed(f"{what} refused: {text}", device=DEVICE)
    if isinstance(exc, httpx.HTTPStatusError):
        code = exc.response.status_code
        if code >= 500 or code == 429:
            return DeviceUnreachable(f"IAM answered HTTP {code} to the {what}", device=DEVICE)
        return BadResponse(f"IAM answered HTTP {code} to the {what}", device=DEVICE)
    if isinstance(exc, httpx.TimeoutException):
        return DeviceUnreachable(f"IAM timed out on the {what}", device=DEVICE)
    if isinstance(exc, httpx.HTTPError):
        return DeviceUnreachable(f"IAM not reachable for the {what}: {exc}", device=DEVICE)
    if isinstance(exc, ValueError):
        return BadResponse(f"IAM answered the {what} with no token: {exc}", device=DEVICE)
    return None


# --------------------------------------------------------------------------- login


@dataclass(frozen=True, slots=True)
class PendingLogin:
    """Between printing the authorisation URL and receiving the code."""

    url: str
    state: str
    verifier: str
    created_at: datetime

    def to_json(self) -> str:
        return json.dumps(
            {
                "url": self.url,
                "state": self.state,
                "verifier": self.verifier,
                "created_at": self.created_at.isoformat(),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> PendingLogin:
        d = json.loads(text)
        return cls(
            url=d["url"],
            state=d["state"],
            verifier=d["verifier"],
            created_at=datetime.fromisoformat(d["created_at"]),
        )


def begin_login(cfg: ViessmannConfig, now: datetime) -> PendingLogin:
    """A fresh PKCE verifier and the URL the owner opens in a browser."""
    if not cfg.client_id:
        raise LoginRequired("viessmann.client_id is not set in the configuration")
    verifier = generate_token(64)
    with oauth_client(cfg) as client:
        url, state = client.create_authorization_url(cfg.auth_url, code_verifier=verifier)
    return PendingLogin(url=str(url), state=str(state), verifier=verifier, created_at=now)


def save_pending(pending: PendingLogin, directory: Path) -> Path:
    path = directory / PENDING_FILE
    write_private(path, pending.to_json())
    return path


def load_pending(directory: Path, now: datetime) -> PendingLogin:
    path = directory / PENDING_FILE
    try:
        pending = PendingLogin.from_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LoginRequired(
            f"no login in progress ({path} is missing): run `emsctl viessmann login` first"
        ) from None
    except (ValueError, KeyError) as exc:
        raise LoginRequired(f"{path} is damaged ({exc}): start the login again") from None
    if now - pending.created_at > PENDING_LOGIN_TTL:
        raise LoginRequired("the login started too long ago: start it again")
    return pending


def discard_pending(directory: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (directory / PENDING_FILE).unlink()


def extract_code(pasted: str, expected_state: str) -> str:
    """The authorisation code from a pasted redirect URL (checking its state) or a bare code."""
    text = pasted.strip()
    if not text:
        raise ValueError("nothing was pasted: expected the redirect URL or the code")
    if "code=" not in text and "error=" not in text and "?" not in text:
        return text
    parts = urlsplit(text)
    params = parse_qs(parts.query)
    params.update({k: v for k, v in parse_qs(parts.fragment).items() if k not in params})
    if "error" in params:
        desc = params.get("error_description", [""])[0]
        raise ValueError(f"the login page answered with an error: {params['error'][0]} {desc}")
    codes = params.get("code")
    if not codes or not codes[0]:
        raise ValueError("the pasted URL has no 'code' parameter")
    state = params.get("state", [None])[0]
    if state is not None and state != expected_state:
        raise ValueError(
            "the pasted URL belongs to another login attempt (its state does not match); "
            "use the URL printed by this login"
        )
    return codes[0]


def complete_login(
    cfg: ViessmannConfig,
    pending: PendingLogin,
    pasted: str,
    tokens: TokenFile,
    now: datetime,
    *,
    transport: httpx.BaseTransport | None = None,
) -> dict[str, Any]:
    """Exchange the code (with the PKCE verifier) for tokens and store them (0600)."""
    code = extract_code(pasted, pending.state)
    with oauth_client(cfg, transport=transport) as client:
        try:
            token = client.fetch_token(
                cfg.token_url,
                grant_type="authorization_code",
                code=code,
                code_verifier=pending.verifier,
            )
        except Exception as exc:
            mapped = token_request_error(exc, "authorisation code")
            if mapped is None:
                raise
            raise mapped from None
    if "refresh_token" not in token:
        raise LoginRequired(
            "the IAM issued no refresh token: the scope must include offline_access "
            f"(viessmann.scope is {cfg.scope!r})"
        )
    tokens.save(token, now)
    return dict(token)
