"""The warehouse's schema version: the numbered files of ``sql/`` as migrations.

Each ``sql/NNN_name.sql`` is migration NNN. This module decides what to apply (files
against the rows of ``reco.schema_migrations``, no database);
:func:`reco.publishing.warehouse.apply_schema` applies, in number order, every file the
warehouse has not had yet or whose text changed since (each file is written so that
applying it again is harmless: ``IF NOT EXISTS``, ``CREATE OR REPLACE``, guarded
``ALTER``), and records it in ``reco.schema_migrations`` (``sql/schema_migrations.sql``), all in one
transaction under an advisory lock: two runs starting at once apply it once, and a failing
file leaves the warehouse as it was. A warehouse already at the code's version gets no DDL
at all, so a run's start takes no lock a reader could wait behind.

A warehouse created before versions were recorded (no ``reco.schema_migrations``) upgrades
in place: every file is applied once, keeping its rows, grants and comments. A warehouse
that records a version newer than the code's last file was upgraded by a newer release:
it is refused with a :class:`~reco.errors.PipelineError` naming both versions.

    reco db upgrade          # what every run's start does
    reco db version          # the warehouse's version against the code's
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from reco import config
from reco.errors import PipelineError

FILE_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    """One numbered file of ``sql/``."""

    version: int
    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Applied:
    """A row of ``reco.schema_migrations``."""

    version: int
    name: str
    checksum: str
    applied_at: datetime


def known(sql_dir: Path | None = None) -> list[Migration]:
    """The code's migrations, in version order; two files with one number are an error."""
    found: dict[int, Migration] = {}
    for path in sorted((sql_dir or config.SQL_DIR).glob("[0-9][0-9][0-9]_*.sql")):
        m = FILE_NAME.match(path.name)
        if not m:
            raise PipelineError(f"{path}: a migration is named NNN_lower_case_words.sql")
        version = int(m.group(1))
        if version in found:
            raise PipelineError(
                f"{path} and {found[version].path} share version {version}: renumber one"
            )
        found[version] = Migration(version, path)
    return [found[v] for v in sorted(found)]


def pending(code: list[Migration], applied: list[Applied]) -> list[Migration]:
    """What an upgrade applies: files the warehouse lacks or has in another text. Raises
    when the warehouse is newer than ``code``."""
    refuse_newer(code, applied)
    done = {a.version: a.checksum for a in applied}
    return [m for m in code if done.get(m.version) != m.checksum]


def refuse_newer(code: list[Migration], applied: list[Applied]) -> None:
    latest = max((m.version for m in code), default=0)
    newer = [a for a in applied if a.version > latest]
    if newer:
        top = max(newer, key=lambda a: a.version)
        raise PipelineError(
            f"the warehouse's schema is at version {top.version} ({top.name}, applied "
            f"{top.applied_at:%Y-%m-%d %H:%M %Z}), newer than this code's {latest}: a newer "
            "release upgraded it. Run that release (or newer) against it, or point "
            "WAREHOUSE_URL at another warehouse; this code does not downgrade a schema."
        )
