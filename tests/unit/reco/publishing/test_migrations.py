"""What an upgrade applies, decided from the files of sql/ and the warehouse's rows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from reco.errors import PipelineError
from reco.publishing import migrations
from reco.publishing.migrations import Applied


def files(tmp_path: Path, names: dict[str, str]) -> list[migrations.Migration]:
    for name, text in names.items():
        (tmp_path / name).write_text(text)
    return migrations.known(tmp_path)


def applied(m: migrations.Migration, checksum: str | None = None) -> Applied:
    return Applied(m.version, m.name, checksum or m.checksum, datetime(2026, 1, 2, tzinfo=UTC))


def test_the_code_s_files_are_versions_in_number_order() -> None:
    code = migrations.known()
    assert [m.version for m in code] == sorted({m.version for m in code})
    assert code[0].name == "001_schema.sql" and code[-1].version >= 100
    assert all(m.name.startswith(f"{m.version:03d}_") for m in code)


def test_pending_is_what_the_warehouse_lacks_or_has_in_another_text(tmp_path: Path) -> None:
    code = files(tmp_path, {"001_a.sql": "A", "010_b.sql": "B", "020_c.sql": "C"})
    assert migrations.pending(code, []) == code  # a warehouse from before versions
    assert migrations.pending(code, [applied(m) for m in code]) == []
    older_b = [applied(code[0]), applied(code[1], "older"), applied(code[2])]
    assert migrations.pending(code, older_b) == [code[1]]
    assert migrations.pending(code, [applied(code[0])]) == code[1:]


def test_a_newer_warehouse_is_refused_naming_both_versions(tmp_path: Path) -> None:
    code = files(tmp_path, {"001_a.sql": "A", "010_b.sql": "B"})
    future = Applied(30, "030_new.sql", "x", datetime(2026, 3, 4, 5, 6, tzinfo=UTC))
    with pytest.raises(PipelineError, match=r"version 30 \(030_new.sql, applied 2026-03-04 05:06"):
        migrations.pending(code, [applied(m) for m in code] + [future])
    with pytest.raises(PipelineError, match="newer than this code's 10.*does not downgrade"):
        migrations.refuse_newer(code, [future])


def test_two_files_with_one_number_or_a_bad_name_are_errors(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="share version 10: renumber one"):
        files(tmp_path, {"010_a.sql": "A", "010_b.sql": "B"})
    for p in tmp_path.iterdir():
        p.unlink()
    with pytest.raises(PipelineError, match="NNN_lower_case_words.sql"):
        files(tmp_path, {"010_Bad-Name.sql": "A"})
