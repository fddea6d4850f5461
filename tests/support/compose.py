"""Driving the docker-compose.yml stack as an operator does: a fresh copy of the project,
an .env filled in, `up`, health, the REST API, `down`. For tests/deploy/."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "reco-base:bookworm"
IMAGE = "reco-pipeline:local"
DATASET_MOUNT = "/data/ml-100k"


def compose_command() -> list[str]:
    """``docker-compose`` (v1, Debian's) where installed, else the ``docker compose`` plugin."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return ["docker", "compose"]


def run(cmd: list[str], cwd: Path | None = None, timeout: float = 1800, **kw) -> str:
    """Run a command; on failure, raise with its output's tail."""
    done = subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False, **kw
    )
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-40:])
        raise AssertionError(f"{' '.join(cmd)} exited {done.returncode}:\n{tail}")
    return done.stdout


def fresh_copy(dest: Path) -> Path:
    """The project's files as a clone has them (tracked, plus new files not ignored)."""
    listed = run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=ROOT)
    for name in filter(None, listed.split("\0")):
        src = ROOT / name
        if src.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    return dest


def env_file(folder: Path, overrides: dict[str, str]) -> dict[str, str]:
    """``.env`` from ``.env.example``: every change-me a fresh random secret, then
    ``overrides``; returns the values."""
    values: dict[str, str] = {}
    lines = []
    for line in (folder / ".env.example").read_text().splitlines():
        m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", line)
        if m:
            name, value = m.groups()
            value = secrets.token_hex(16) if value == "change-me" else value
            value = overrides.get(name, value)
            values[name] = value
            line = f"{name}={value}"
        lines.append(line)
    for name, value in overrides.items():
        if name not in values:
            values[name] = value
            lines.append(f"{name}={value}")
    (folder / ".env").write_text("\n".join(lines) + "\n")
    return values


def build_images(folder: Path) -> dict[str, float]:
    """The base (from Debian's packages, when missing) and the image; seconds each."""
    times = {}
    t0 = time.monotonic()
    run(["bash", str(folder / "docker" / "base-image.sh"), BASE_IMAGE], cwd=folder)
    times["base"] = time.monotonic() - t0
    t0 = time.monotonic()
    # This machine's registries sit behind a TLS proxy: its CA bundle for the build stages.
    cert = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE")
    if cert and Path(cert).is_file():
        shutil.copy(cert, folder / "docker" / "build-ca.crt")
    cmd = ["docker", "build", "--network", "host", "-f", "docker/Dockerfile", "-t", IMAGE]
    cmd += ["--build-arg", f"BASE_IMAGE={BASE_IMAGE}", "."]
    run(cmd, cwd=folder, env={**os.environ, "DOCKER_BUILDKIT": "0"})
    times["image"] = time.monotonic() - t0
    return times


@dataclass
class Stack:
    folder: Path
    project: str
    env: dict[str, str]
    files: list[str]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.env['AIRFLOW_UI_PORT']}"

    def compose(self, *args: str, timeout: float = 1800) -> str:
        files = [a for f in self.files for a in ("-f", f)]
        cmd = [*compose_command(), "-p", self.project, *files, *args]
        return run(cmd, cwd=self.folder, timeout=timeout)

    def containers(self, all_: bool = True) -> list[dict]:
        """``docker inspect`` of the project's containers."""
        label = f"label=com.docker.compose.project={self.project}"
        ids = run(["docker", "ps", "-q", *(["-a"] if all_ else []), "--filter", label]).split()
        return json.loads(run(["docker", "inspect", *ids])) if ids else []

    def health(self) -> dict[str, str]:
        """Each service's state: its health, or how a one-shot container exited."""
        out = {}
        for c in self.containers():
            name = c["Config"]["Labels"]["com.docker.compose.service"]
            state = c["State"]
            if "Health" in state:
                out[name] = state["Health"]["Status"]
            elif state["Status"] == "exited":
                out[name] = f"exited {state['ExitCode']}"
            else:
                out[name] = state["Status"]
        return out

    def wait_healthy(self, timeout: float = 600) -> float:
        """Until every long-running service is healthy and airflow-init exited 0."""
        t0 = time.monotonic()
        states: dict[str, str] = {}
        while time.monotonic() - t0 < timeout:
            states = self.health()
            if states.get("airflow-init", "").startswith("exited") and states["airflow-init"] != (
                "exited 0"
            ):
                break
            others = {k: v for k, v in states.items() if k != "airflow-init"}
            if (
                states.get("airflow-init") == "exited 0"
                and others
                and all(v == "healthy" for v in others.values())
            ):
                return time.monotonic() - t0
            time.sleep(3)
        logs = self.compose("logs", "--tail", "30", timeout=120)
        raise AssertionError(f"not healthy after {time.monotonic() - t0:.0f} s: {states}\n{logs}")

    def network(self) -> str:
        return f"{self.project}_default"

    def psql(self, user: str, password: str, sql: str) -> list[str]:
        """``sql`` through psql in a new container on the stack's network (not the writer's)."""
        url = f"postgresql://{user}:{password}@postgres:5432/warehouse"
        out = run(
            ["docker", "run", "--rm", "--network", self.network(), IMAGE,
             "psql", "-X", "-v", "ON_ERROR_STOP=1", "-tA", "-c", sql, url],
            timeout=120,
        )  # fmt: skip
        return out.splitlines()

    def exec(self, service: str, *cmd: str) -> str:
        return self.compose("exec", "-T", service, *cmd, timeout=300)

    def leftovers(self) -> dict[str, list[str]]:
        """What of the project still exists: containers, volumes, networks."""
        label = f"label=com.docker.compose.project={self.project}"
        return {
            "containers": run(["docker", "ps", "-aq", "--filter", label]).split(),
            "volumes": run(["docker", "volume", "ls", "-q", "--filter", label]).split(),
            "networks": run(["docker", "network", "ls", "-q", "--filter", label]).split(),
        }
