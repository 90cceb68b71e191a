"""Device passwords from the environment or a KEY=VALUE credentials file, never from the YAML.

Names: `EMS_SHELLY_<LOAD>_PASSWORD` (e.g. EMS_SHELLY_WB_A_PASSWORD) for one load,
`EMS_SHELLY_PASSWORD` for all. The file uses the same names, so systemd's EnvironmentFile=
can read it too. Environment variables win over the file; a per-load name wins over the
general one.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from emsctl.config import Config
from emsctl.model import LoadId

log = logging.getLogger(__name__)

ALL_LOADS_VAR = "EMS_SHELLY_PASSWORD"
FILE_VAR = "EMS_CREDENTIALS_FILE"
#: The file `make install` creates and the unit's EnvironmentFile= loads: one place for both.
DEFAULT_FILE = Path("/etc/ems/credentials.env")


class CredentialsError(Exception):
    """A named credentials file is missing, unreadable or malformed (names file and line)."""


def load_var(load: LoadId) -> str:
    """The per-load variable name, e.g. EMS_SHELLY_WB_A_PASSWORD."""
    return f"EMS_SHELLY_{load.value.upper()}_PASSWORD"


def parse_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and `#` comments ignored; one pair of matching quotes
    around a value is removed; an optional leading `export ` is allowed."""
    try:
        data = path.read_bytes()
        mode = path.stat().st_mode
    except OSError as exc:
        raise CredentialsError(f"credentials file {path}: cannot read it: {exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Named by its number only: the line is probably a password.
        number = data[: exc.start].count(b"\n") + 1
        raise CredentialsError(
            f"credentials file {path}, line {number}: not UTF-8 text (save the file as UTF-8)"
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning(
            "credentials file %s is readable by others (mode %o); chmod 600 it",
            path,
            stat.S_IMODE(mode),
        )
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key.replace("_", "").isalnum():
            # The line itself is not shown: it may be a password that lost its NAME=.
            raise CredentialsError(
                f"credentials file {path}, line {number}: expected NAME=value "
                f"(e.g. {ALL_LOADS_VAR}=...) with NAME of letters, digits and _"
            )
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


@dataclass(frozen=True)
class Credentials:
    """Merged password lookup for every load. `origins` says where each name came from."""

    values: Mapping[str, str] = field(default_factory=dict)
    origins: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def load(
        cls,
        files: Iterable[str | Path] = (),
        environ: Mapping[str, str] | None = None,
    ) -> Credentials:
        """Read the given files (each must exist), then overlay the environment."""
        env = os.environ if environ is None else environ
        values: dict[str, str] = {}
        origins: dict[str, str] = {}
        for f in files:
            path = Path(f)
            for key, value in parse_file(path).items():
                values[key] = value
                origins[key] = f"file {path}"
        for key, value in env.items():
            if key.startswith("EMS_SHELLY_") and key.endswith("_PASSWORD"):
                values[key] = value
                origins[key] = "environment"
        return cls(values, origins)

    @classmethod
    def for_config(cls, config: Config, environ: Mapping[str, str] | None = None) -> Credentials:
        """The credentials the daemon and the CLI use: files named by the devices, else
        $EMS_CREDENTIALS_FILE, else /etc/ems/credentials.env when this process may read it;
        then the environment on top.

        The default file is root's (0600): the service, running as its own user, gets its
        values through EnvironmentFile= and skips the file; `sudo emsctl ...` reads it."""
        env = os.environ if environ is None else environ
        files: list[str | Path] = []
        for _, lc in config.loads.items():
            f = lc.device.credentials_file
            if f and f not in files:
                files.append(f)
        if not files:
            if env.get(FILE_VAR):
                files.append(env[FILE_VAR])
            elif DEFAULT_FILE.is_file():
                if os.access(DEFAULT_FILE, os.R_OK):
                    files.append(DEFAULT_FILE)
                else:
                    log.debug(
                        "%s is not readable here; passwords from the environment", DEFAULT_FILE
                    )
        return cls.load(files, env)

    def _lookup(self, load: LoadId) -> tuple[str, str] | None:
        for name in (load_var(load), ALL_LOADS_VAR):
            value = self.values.get(name)
            # An empty variable is a mistake more often than an empty password.
            if value:
                return name, value
        return None

    def shelly_password(self, load: LoadId) -> str | None:
        found = self._lookup(load)
        return found[1] if found else None

    def describe(self, load: LoadId) -> str:
        """Where the load's password comes from, for owners (never the password itself)."""
        found = self._lookup(load)
        if found is None:
            return f"none (set {load_var(load)} or {ALL_LOADS_VAR})"
        name, _ = found
        return f"{name} from {self.origins.get(name, 'unknown')}"
