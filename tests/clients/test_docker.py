"""The Docker image, proved without a Docker engine (none runs here).

1. The Dockerfile, parsed: slim Python 3.11 base, non-root user, port 5432, a data volume, a
   health check, the extension installed at build time, every ALLOYDB_AI_EMULATOR_* variable it
   sets is a real `serve` flag, and the entrypoint it names is the script in docker/.
2. The entrypoint script, read: every `alloydb-ai-emulator serve` it runs, with its flags, is
   accepted by the command's own argparse parser.
3. The entrypoint script, run with bash on this machine with the image's environment (port and
   data directory moved to a free port and a temporary directory): it refuses to start without a
   password like the postgres image, starts with POSTGRES_PASSWORD_FILE, answers SQL with SCRAM,
   passes the health check command, and stops on SIGTERM.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from emulator.cli import build_parser
from emulator.config import env_name
from tests.support.emulators import free_port
from tests.support.paths import REPO

DOCKERFILE = REPO / "Dockerfile"
ENTRYPOINT = REPO / "docker" / "entrypoint.sh"


@dataclass
class Instruction:
    keyword: str
    value: str

    def exec_form(self) -> list[str]:
        """The JSON (exec) form's words, or the shell form as `sh -c` would see it."""
        text = self.value.strip()
        if text.startswith("["):
            words = json.loads(text)
            assert isinstance(words, list)
            return [str(w) for w in words]
        return ["/bin/sh", "-c", text]


def parse_dockerfile(text: str) -> list[list[Instruction]]:
    """Instructions grouped by stage: comments dropped, continuation lines joined."""
    stages: list[list[Instruction]] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue  # Docker drops comment lines, also inside a continued instruction
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        line, pending = pending + stripped, ""
        keyword, _, value = line.partition(" ")
        instruction = Instruction(keyword.upper(), value.strip())
        if instruction.keyword == "FROM":
            stages.append([])
        assert stages, f"instruction before FROM: {line}"
        stages[-1].append(instruction)
    assert not pending, "the Dockerfile ends inside a continued line"
    return stages


def env_of(stage: list[Instruction]) -> dict[str, str]:
    values: dict[str, str] = {}
    for ins in stage:
        if ins.keyword == "ENV":
            for word in shlex.split(ins.value):
                name, _, value = word.partition("=")
                values[name] = value
    return values


@pytest.fixture(scope="module")
def stages() -> list[list[Instruction]]:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def final(stages: list[list[Instruction]]) -> list[Instruction]:
    return stages[-1]


def only(stage: list[Instruction], keyword: str) -> Instruction:
    found = [ins for ins in stage if ins.keyword == keyword]
    assert len(found) == 1, f"expected one {keyword}, found {len(found)}"
    return found[0]


def test_every_stage_is_slim_python_311(stages: list[list[Instruction]]) -> None:
    for stage in stages:
        image = stage[0].value.split()[0]
        assert image.startswith("python:3.11") and image.endswith("-slim"), image


def test_runs_as_a_non_root_user(final: list[Instruction]) -> None:
    user = only(final, "USER").value
    assert user not in ("root", "0") and not user.startswith(("root:", "0:"))
    created = " ".join(ins.value for ins in final if ins.keyword == "RUN")
    assert re.search(rf"useradd\b.*\b{re.escape(user)}\b", created), "the user is created"


def test_listens_on_5432_on_all_addresses(final: list[Instruction]) -> None:
    assert only(final, "EXPOSE").value.split() == ["5432"]
    env = env_of(final)
    assert env["ALLOYDB_AI_EMULATOR_HOST"] == "0.0.0.0"
    assert env["ALLOYDB_AI_EMULATOR_PORT"] == "5432"


def test_data_lives_under_the_volume(final: list[Instruction]) -> None:
    volume = only(final, "VOLUME").value.strip()
    volumes = json.loads(volume) if volume.startswith("[") else volume.split()
    data_dir = env_of(final)["ALLOYDB_AI_EMULATOR_DATA_DIR"]
    assert any(data_dir.startswith(v.rstrip("/") + "/") for v in volumes), (data_dir, volumes)


def test_fake_models_by_default(final: list[Instruction]) -> None:
    assert env_of(final)["ALLOYDB_AI_EMULATOR_MODELS"] == "fake"


def test_every_emulator_variable_is_a_serve_flag(final: list[Instruction]) -> None:
    parser = build_parser()
    serve = next(a for a in parser._subparsers._group_actions[0].choices.items()  # type: ignore[union-attr]
                 if a[0] == "serve")[1]
    known = {env_name(flag) for action in serve._actions for flag in action.option_strings
             if flag.startswith("--")}
    used = {name for name in env_of(final) if name.startswith("ALLOYDB_AI_EMULATOR_")}
    assert used and used <= known, used - known


def test_health_check_uses_a_command_the_image_has(stages: list[list[Instruction]],
                                                   final: list[Instruction]) -> None:
    check = only(final, "HEALTHCHECK").value
    assert "--interval" in check and " CMD " in f" {check} "
    command = check.split(" CMD ", 1)[1].split()
    # The image's python is the venv's (first on PATH), which has the emulator installed.
    assert command[:3] == ["python", "-m", "emulator.healthcheck"]
    assert any(ins.keyword == "ENV" and "PATH=/opt/alloydb-ai-emulator/bin:" in ins.value
               for ins in final)


def test_extension_is_installed_at_build_time_with_the_embedded_pg_config(
    stages: list[list[Instruction]],
) -> None:
    runs = " ".join(ins.value for ins in stages[0] if ins.keyword == "RUN")
    assert "alloydb-ai-emulator install-extension --pg-config" in runs
    assert "bin_dir() / \"pg_config\"" in runs
    assert (Path(_pg_bin()) / "pg_config").exists()
    build_parser().parse_args(["install-extension", "--pg-config", "/x/pg_config"])


def test_no_build_tools_in_the_image(stages: list[list[Instruction]]) -> None:
    for stage in stages:
        for ins in stage:
            assert not re.search(r"\b(gcc|g\+\+|build-essential|make|clang)\b", ins.value), ins


def test_final_stage_copies_the_entrypoint_it_runs(final: list[Instruction]) -> None:
    entrypoint = only(final, "ENTRYPOINT").exec_form()
    copies = [ins.value.split() for ins in final if ins.keyword == "COPY"]
    assert ["docker/entrypoint.sh", f"/usr/local/bin/{entrypoint[0]}"] in copies
    assert ENTRYPOINT.exists() and os.access(ENTRYPOINT, os.X_OK)
    assert only(final, "CMD").exec_form() == ["serve"]


def test_build_context_has_what_the_build_copies(stages: list[list[Instruction]]) -> None:
    for stage in stages:
        for ins in stage:
            if ins.keyword == "COPY" and not ins.value.startswith("--from"):
                for src in ins.value.split()[:-1]:
                    assert (REPO / src).exists(), src
    ignored = (REPO / ".dockerignore").read_text().split()
    for needed in ("pyproject.toml", "README.md", "emulator", "proxy", "docker"):
        assert needed not in ignored


# --- the entrypoint script -----------------------------------------------------------------------


def serve_invocations() -> list[list[str]]:
    """Each `alloydb-ai-emulator serve ...` line of the script, as words (variables kept)."""
    found = []
    for line in ENTRYPOINT.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if re.match(r"(exec\s+)?alloydb-ai-emulator\s+serve\b", line):
            words = shlex.split(line)
            found.append(words[words.index("alloydb-ai-emulator") + 1:])
    return found


def test_entrypoint_runs_serve_with_flags_serve_accepts() -> None:
    invocations = serve_invocations()
    assert invocations, "the entrypoint runs alloydb-ai-emulator serve"
    parser = build_parser()
    for words in invocations:
        args = [w for w in words if w != "$@"]
        flags = [w for w in args if w.startswith("--")]
        # Each flag with a dummy value where it takes one: the parser must know it.
        probe = ["serve"]
        for flag in flags:
            probe.append(flag)
            action = next(a for a in parser._subparsers._group_actions[0]  # type: ignore[union-attr,index]
                          .choices["serve"]._actions if flag in a.option_strings)
            if action.nargs != 0:
                probe.append(action.choices[0] if action.choices else "1")
        parser.parse_args(probe)


@dataclass
class Run:
    process: subprocess.Popen[str]
    port: int
    lines: list[str]


def _pg_bin() -> str:
    from emulator.embedded import bin_dir

    return str(bin_dir())


def image_env(tmp: Path, port: int, **extra: str) -> dict[str, str]:
    """The image's environment (ENV of the Dockerfile) with this machine's PATH, a free port
    on loopback and a data directory under tmp."""
    final = parse_dockerfile(DOCKERFILE.read_text())[-1]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ALLOYDB_AI_EMULATOR_", "POSTGRES_", "PG"))}
    for name, value in env_of(final).items():
        if name != "PATH":
            env[name] = value
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([venv_bin, _pg_bin(), env.get("PATH", "")])
    env["ALLOYDB_AI_EMULATOR_HOST"] = "127.0.0.1"  # not every address of this machine
    env["ALLOYDB_AI_EMULATOR_PORT"] = str(port)
    env["ALLOYDB_AI_EMULATOR_DATA_DIR"] = str(tmp / "pgdata")
    env.update(extra)
    return env


@pytest.fixture
def tmp_data() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="alloydb-emu-docker-"))
    path.chmod(0o755)  # as root, serve runs PostgreSQL as a system user who must enter it
    try:
        yield path
    finally:
        subprocess.run(["rm", "-rf", str(path)], check=False)


def start_entrypoint(env: dict[str, str], *args: str, timeout: float = 90) -> Run:
    process = subprocess.Popen(["bash", str(ENTRYPOINT), *args], env=env, cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("ready:"):
            import threading

            def drain() -> None:
                assert process.stdout is not None
                lines.extend(process.stdout)

            threading.Thread(target=drain, daemon=True).start()
            return Run(process, int(env["ALLOYDB_AI_EMULATOR_PORT"]), lines)
    process.kill()
    process.wait()
    raise AssertionError("the entrypoint did not become ready:\n" + "".join(lines))


def stop(run: Run) -> int:
    run.process.send_signal(signal.SIGTERM)
    try:
        return run.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        run.process.kill()
        run.process.wait()
        raise


def test_refuses_to_start_without_a_password_like_the_postgres_image(tmp_data: Path) -> None:
    result = subprocess.run(["bash", str(ENTRYPOINT)], env=image_env(tmp_data, free_port()),
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 1
    assert "POSTGRES_PASSWORD" in result.stderr and "POSTGRES_HOST_AUTH_METHOD" in result.stderr
    assert not (tmp_data / "pgdata").exists()


def test_other_commands_run_as_given(tmp_data: Path) -> None:
    result = subprocess.run(["bash", str(ENTRYPOINT), "alloydb-ai-emulator", "env-init",
                             "--no-check"], env=image_env(tmp_data, 5432),
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert "export DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres" in result.stdout


def test_entrypoint_serves_sql_with_the_password_and_passes_the_health_check(
    tmp_data: Path,
) -> None:
    secret = tmp_data / "password"
    secret.write_text("s3cret pw")
    port = free_port()
    env = image_env(tmp_data, port, POSTGRES_PASSWORD_FILE=str(secret))
    run = start_entrypoint(env)
    try:
        assert run.lines[0] == (
            f"ready: accepting connections at postgresql://postgres@127.0.0.1:{port}/postgres\n")
        url = f"postgresql://postgres:s3cret%20pw@127.0.0.1:{port}/postgres"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS google_ml_integration")
            (dim,) = conn.execute(  # type: ignore[misc]
                "SELECT array_length(embedding('text-embedding-005', 'from docker'), 1)"
            ).fetchone()
            assert dim == 768
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(f"postgresql://postgres:wrong@127.0.0.1:{port}/postgres").close()
        assert (tmp_data / "pgdata" / "PG_VERSION").exists()

        final = parse_dockerfile(DOCKERFILE.read_text())[-1]
        check = only(final, "HEALTHCHECK").value.split(" CMD ", 1)[1]
        health = subprocess.run(["sh", "-c", check], env=env, capture_output=True, text=True,
                                timeout=30, check=False)
        assert health.returncode == 0, health.stdout + health.stderr
    finally:
        assert stop(run) == 0, "".join(run.lines)
    down = subprocess.run(["sh", "-c", check], env=env, capture_output=True, timeout=30, check=False)
    assert down.returncode != 0, "the health check fails once the emulator is gone"
