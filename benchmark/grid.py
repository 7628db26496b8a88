"""``rls3 grid``: one model's (arm, seed) runs as Ray tasks, on a local Ray instance or a cluster.

Each run is ``rls3 run``'s ``run_from_params``, unchanged: it writes the same run directory,
resumes from its last completed iteration, and tracks to the same MLflow store. Ray only decides
where and when each run happens:

- every (arm, seed) of the active profile is a task that asks for the profile's ``grid``
  resources (CPUs, GPUs, memory);
- a seed's budget arms (random, sac-dense) take its sac task's summary as an argument, so Ray
  starts them after the sac run, with its budget (generated samples) passed on; the task checks
  it against the sac run's ``summary.json``;
- a task whose worker died (or whose Unity player stopped) is retried ``grid.retries`` times,
  and the retry resumes the run from its checkpoint;
- the driver shows each run as queued, running (where, which attempt) or done.

Results land in ``results/`` as with ``dvc repro``: on a cluster, ``results/`` and ``datasets/``
must be one shared filesystem mounted at the same path on every node (docs/guide.md, "Run on a
cluster"). DVC stays the table of contents: after a grid, ``dvc repro`` finds each run finished
with unchanged inputs and records it in seconds (dvc.yaml's comments).

Ray's token authentication (Ray 2.60): a local instance gets a fresh token that only this
process and the instance's own processes hold (in their environment, never in ``~/.ray``); a
cluster is checked before joining (``check_cluster``): reachable, a Ray GCS, with token
authentication on unless ``insecure``, and this machine's token accepted.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from benchmark import layout
from benchmark.config import ARMS, BUDGET_ARMS, Params, load_params, parse_params
from benchmark.fileio import atomic_write_json

ENGINES = ("local", "ray")
AUTH_VARIABLES = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
CONNECT_SECONDS = 5.0  # how long the pre-flight waits for the head to answer
_TOKEN_HELP = (
    "create one on the head with `ray get-auth-token --generate` (it prints the token and keeps "
    "it in the head's ~/.ray/auth_token), then copy it to this machine's ~/.ray/auth_token or to "
    "a file named by RAY_AUTH_TOKEN_PATH (docs/guide.md, 'Run on a cluster')"
)


class GridError(RuntimeError):
    """A run that failed after its retries, or a cluster the grid will not join; the message
    names it and the cause."""


@dataclass
class GridReport:
    """What a grid did: each run's summary and attempts, and the wall time."""

    model: str
    profile: str
    engine: str
    wall_seconds: float = 0.0
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)  # "arm/seedS" -> record


def grid_runs(params: Params, model: str) -> list[tuple[str, int]]:
    """The (arm, seed) runs of ``model`` in the active profile, sac runs first."""
    seeds = range(params.active.model(model).seeds)
    return [("sac", s) for s in seeds] + [(a, s) for s in seeds for a in ARMS if a != "sac"]


def _key(arm: str, seed: int) -> str:
    return f"{arm}/seed{seed}"


def _progress_actor() -> Any:
    import ray

    @ray.remote(num_cpus=0)
    class Progress:
        """Where each run stands; tasks report to it, the driver reads it."""

        def __init__(self) -> None:
            self.runs: dict[str, dict[str, Any]] = {}

        def started(self, key: str, where: str) -> None:
            record = self.runs.setdefault(key, {"attempts": 0})
            attempts = record["attempts"] + 1
            record.update(state="running", where=where, attempts=attempts, started=time.time())

        def done(self, key: str) -> None:
            self.runs[key].update(state="done", finished=time.time())

        def snapshot(self) -> dict[str, dict[str, Any]]:
            return self.runs

    return Progress.remote()  # type: ignore[attr-defined]


def run_task(
    data: dict[str, Any],
    model: str,
    arm: str,
    seed: int,
    results: str,
    datasets: str,
    tracking: str | None,
    progress: Any,
    sac_summary: dict[str, Any] | None = None,
    root: str | None = None,
) -> dict[str, Any]:
    """One run on a Ray worker: ``run_from_params``, resuming wherever an earlier attempt
    stopped. ``data`` is the params file's content (workers need not see the file); ``root``
    the project directory its relative paths (external sets) are read from."""
    from benchmark.loop import RunConfig, budget_of, run_from_params

    key = _key(arm, seed)
    progress.started.remote(key, f"{socket.gethostname()} pid {os.getpid()}")
    if tracking:
        os.environ["MLFLOW_TRACKING_URI"] = tracking
    params = parse_params(data)
    if sac_summary is not None:  # the budget Ray passed on is the one the sac run wrote
        cfg = RunConfig(model, arm, seed, params.profile, params.active, Path(results), Path())
        if budget_of(cfg) != sac_summary["generated_samples"]:
            raise RuntimeError(
                f"{key}: the sac run's summary on the shared filesystem does not match the one "
                f"Ray passed on ({sac_summary['generated_samples']} generated samples): is "
                f"{results} the same directory on every node?"
            )
    summary = run_from_params(
        params,
        model,
        arm,
        seed,
        results=Path(results),
        datasets=Path(datasets),
        root=None if root is None else Path(root),
    )
    progress.done.remote(key)
    return summary


def _quiet() -> dict[str, Any]:
    """``ray.init``'s arguments that keep Ray's own logging off the grid's output."""
    return {"log_to_driver": False, "logging_level": logging.ERROR, "configure_logging": True}


@contextmanager
def _ray_auth(**values: str | None) -> Iterator[None]:
    """Ray's authentication variables set (``None``: removed) in this process while Ray runs,
    restored afterwards.

    Ray caches the mode (its config) and the token (its loader) per process, and a driver's
    processes (a local instance's GCS, raylet and workers) inherit its environment: so the
    variables are set before ``ray.init`` and the caches re-read, as Ray's own
    ``_enable_token_auth`` does (``Config.initialize``, ``reset_cache``: private, no public API
    for it in Ray 2.60)."""
    saved = {name: os.environ.get(name) for name in values}

    def apply(settings: dict[str, str | None]) -> None:
        from ray._raylet import AuthenticationTokenLoader, Config  # type: ignore[attr-defined]

        for name, value in settings.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()

    apply(values)
    try:
        yield
    finally:
        apply(saved)


@contextmanager
def local_instance(num_cpus: int | None, temp_dir: str | None = None) -> Iterator[str]:
    """A new Ray instance on this machine (``num_cpus``: its CPUs, default all; ``temp_dir``:
    its session files, default Ray's /tmp/ray), in token mode with a fresh token; its GCS
    address.

    Ray 2.60's GCS listens on every interface whatever node address it is given (it turns
    127.0.0.1 into the machine's address), so the token is what keeps other machines out. Left
    to itself, ``ray.init`` would write its token to ``~/.ray/auth_token``, readable by all; the
    token is instead only in this process's environment and its children's (the instance's
    processes inherit it), and dropped when the instance stops. ``address="local"``: a new
    instance even where ``ray start`` left a cluster on this machine."""
    import ray

    with _ray_auth(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32)):
        ray.init(
            address="local",
            num_cpus=num_cpus,
            include_dashboard=False,
            _temp_dir=temp_dir,
            **_quiet(),
        )
        try:
            yield str(ray.get_runtime_context().gcs_address)
        finally:
            ray.shutdown()


@dataclass(frozen=True)
class ClusterCheck:
    """What ``check_cluster`` found: the GCS address, whether it asks for a token, and the
    warning to show (a cluster without authentication joined with ``insecure``)."""

    address: str
    authenticated: bool
    warning: str | None = None


def gcs_status(address: str, headers: dict[str, str] | None = None) -> str:
    """The gRPC status name of one cheap call to the GCS at ``address`` (its cluster id) with
    these headers: ``OK``, ``UNAUTHENTICATED`` (token mode, the token missing or wrong),
    ``UNAVAILABLE`` (no GCS there)...

    Ray has no API that tells a driver whether a cluster asks for a token: a driver in token
    mode joins a cluster without authentication as well (it sends its token, which is
    ignored). A call without a token tells: a cluster in token mode refuses it. The service and
    method are Ray's protobuf (``ray.core.generated``), not a public API. With RAY_USE_TLS, the
    call goes over TLS with Ray's certificates, as Ray's own channels do."""
    import grpc
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
        from ray._common.tls_utils import load_certs_from_env

        chain, key, ca = load_certs_from_env()
        credentials = grpc.ssl_channel_credentials(
            certificate_chain=chain, private_key=key, root_certificates=ca
        )
        channel = grpc.secure_channel(address, credentials)
    else:
        channel = grpc.insecure_channel(address)
    with channel:
        stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
        try:
            stub.GetClusterId(
                gcs_service_pb2.GetClusterIdRequest(),  # type: ignore[attr-defined]
                timeout=CONNECT_SECONDS,
                metadata=tuple((headers or {}).items()),
            )
        except grpc.RpcError as err:
            return str(err.code().name)
    return "OK"


def _token_source() -> str:
    """Where Ray takes this machine's token from (its order: the variable, the file it names,
    the default file)."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "the RAY_AUTH_TOKEN variable"
    if os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return f"RAY_AUTH_TOKEN_PATH={os.environ['RAY_AUTH_TOKEN_PATH']}"
    return "~/.ray/auth_token"


def _token_headers() -> dict[str, str]:
    """This machine's token as Ray would send it (the same loader, the same order); empty if
    there is none."""
    from ray._raylet import AuthenticationTokenLoader  # type: ignore[attr-defined]
    from ray.exceptions import AuthenticationError

    loader = AuthenticationTokenLoader.instance()
    loader.reset_cache()  # the variables may have changed since Ray last looked
    try:
        if not loader.has_token(ignore_auth_mode=True):
            return {}
        return dict(loader.get_token_for_http_header(ignore_auth_mode=True))
    except AuthenticationError as err:  # RAY_AUTH_TOKEN_PATH names a missing or empty file
        raise GridError(
            f"{_token_source()} cannot be read or is empty ({str(err).split('. ')[0]}): "
            f"point it at the file that holds the cluster's token"
        ) from err


def check_cluster(address: str | None, insecure: bool = False) -> ClusterCheck:
    """Check the cluster at ``address`` (``None`` or ``auto``: the one ``ray start`` left on
    this machine, or RAY_ADDRESS) before joining it, in seconds: something listens there, it
    is a Ray GCS, it asks for a token (or ``insecure``), and it accepts this machine's token.
    Raises ``GridError`` (``ValueError`` for a malformed address) with one line that names
    the fix."""
    from ray._private.services import canonicalize_bootstrap_address

    given = address or "auto"
    try:
        resolved = canonicalize_bootstrap_address(given)
    except ConnectionError as err:  # auto, and no cluster here
        raise GridError(
            "no Ray cluster started on this machine (RAY_AUTH_MODE=token ray start --head) and "
            "no --address: pass --address HEAD:PORT of the cluster's head"
        ) from err
    except ValueError as err:
        raise ValueError(f"--address {given!r}: expected HOST:PORT of the cluster's head") from err
    host, _, port = (resolved or "").rpartition(":")
    if not (resolved and host and port.isdigit()):
        raise ValueError(f"--address {given!r}: expected HOST:PORT of the cluster's head")
    where = given if given != "auto" else resolved
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS).close()
    except socket.gaierror as err:
        raise GridError(f"--address {where}: unknown host ({err.strerror})") from err
    except OSError as err:
        reason = getattr(err, "strerror", None) or str(err) or type(err).__name__
        if resolved != where:  # Ray connects to the machine's address for 127.0.0.1
            reason = f"{resolved}: {reason}"
        raise GridError(
            f"nothing answers at {where} ({reason}): start the head there with "
            f"`RAY_AUTH_MODE=token ray start --head --port {port}` (docs/guide.md, 'Run on a "
            f"cluster'), or pass --address HOST:PORT of a running head"
        ) from err
    status = gcs_status(resolved)
    if status == "OK":  # served without a token: no authentication
        if not insecure:
            raise GridError(
                f"the Ray cluster at {where} runs without authentication (anyone who reaches "
                f"it can run code on its nodes): restart it with RAY_AUTH_MODE=token on the "
                f"head and every node (docs/guide.md, 'Run on a cluster'), or pass --insecure to "
                f"join it anyway"
            )
        warning = (
            f"joining the Ray cluster at {where}, which runs without authentication "
            f"(--insecure): anyone who reaches it can run code on its nodes"
        )
        return ClusterCheck(resolved, authenticated=False, warning=warning)
    if status != "UNAUTHENTICATED":
        raise GridError(
            f"{where} answers, but not as a Ray head's GCS (gRPC {status}): is {port} the "
            f"port the head was started with (`ray start --head --port`), and RAY_USE_TLS set "
            f"here as on the cluster?"
        )
    headers = _token_headers()
    if not headers:
        raise GridError(
            f"the Ray cluster at {where} asks for a token and this machine has none "
            f"(RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token): {_TOKEN_HELP}"
        )
    if gcs_status(resolved, headers) != "OK":
        raise GridError(
            f"the Ray cluster at {where} refused this machine's token ({_token_source()}): "
            f"copy the head's token there (`ray get-auth-token` on the head prints it)"
        )
    return ClusterCheck(resolved, authenticated=True)


@contextmanager
def joined_cluster(address: str | None, insecure: bool = False) -> Iterator[str]:
    """This process joined to the cluster at ``address`` after ``check_cluster``; its GCS
    address. Token mode for a cluster that asks for a token; for one without
    authentication (``insecure``) the driver neither needs nor sends a token."""
    import ray

    check = check_cluster(address, insecure)
    if check.warning:
        print(f"rls3: warning: {check.warning}", file=sys.stderr, flush=True)
    with _ray_auth(RAY_AUTH_MODE="token" if check.authenticated else "disabled"):
        ray.init(address=check.address, **_quiet())
        try:
            yield str(ray.get_runtime_context().gcs_address)
        finally:
            ray.shutdown()


def _format(runs: list[tuple[str, int]], snapshot: dict[str, dict[str, Any]]) -> str:
    """One line per run: queued, running (where, attempt) or done."""
    lines = []
    for arm, seed in runs:
        record = snapshot.get(_key(arm, seed), {})
        state = record.get("state", "queued")
        detail = (
            f" on {record['where']}, attempt {record['attempts']}" if state == "running" else ""
        )
        lines.append(f"  {_key(arm, seed):<18} {state}{detail}")
    counts = {s: sum(1 for r in runs if snapshot.get(_key(*r), {}).get("state", "queued") == s)
              for s in ("queued", "running", "done")}  # fmt: skip
    head = ", ".join(f"{n} {s}" for s, n in counts.items())
    return f"grid: {head}\n" + "\n".join(lines)


def run_grid_file(
    params: str | Path, model: str, *, profile: str | None = None, **options: Any
) -> GridReport:
    """``run_grid`` (with its keyword ``options``) of the params file ``params`` (``profile``:
    instead of its ``profile:``), as ``rls3 grid`` and ``make bench`` run it. The file is
    validated first (a bad value is the usual error naming its key); an ``address`` or
    ``insecure`` is for the ray engine only."""
    load_params(params, profile)
    data = yaml.safe_load(Path(params).read_text())
    if profile is not None:
        data["profile"] = profile
    joining = options.get("address") or options.get("insecure")
    if options.get("engine", "local") == "local" and joining:
        flag = "--address" if options.get("address") else "--insecure"
        raise ValueError(f"{flag} is for joining a cluster: use it with --engine ray")
    return run_grid(data, model, **options)


def run_grid(
    data: dict[str, Any],
    model: str,
    *,
    engine: str = "local",
    address: str | None = None,
    insecure: bool = False,
    results: str | Path = "results",
    datasets: str | Path = "datasets",
    num_cpus: int | None = None,
    poll_seconds: float = 2.0,
    echo: bool = True,
) -> GridReport:
    """Run ``model``'s grid of the profile in ``data`` (a loaded params file) on Ray.

    ``engine`` ``local`` starts a Ray instance on this machine (``num_cpus``: its CPUs, default
    all; ``local_instance``); ``ray`` joins a running cluster at ``address`` (default: the one
    ``ray start`` left on this node) after ``check_cluster`` (``insecure``: join one without
    authentication). The summaries are returned and written to ``results/grid/MODEL.json``.
    """
    if engine not in ENGINES:
        raise ValueError(f"--engine {engine!r}; choose one of {list(ENGINES)}")
    import ray

    params = parse_params(data)
    grid = params.active.grid
    results, datasets = Path(results).resolve(), Path(datasets).resolve()
    runs = grid_runs(params, model)
    report = GridReport(model, params.profile, engine)
    start = time.perf_counter()
    session = local_instance(num_cpus) if engine == "local" else joined_cluster(address, insecure)
    with session:
        progress = _progress_actor()
        task = ray.remote(run_task).options(
            num_cpus=grid.cpus,
            num_gpus=grid.gpus,
            memory=int(grid.memory_gb * 2**30) or None,
            max_retries=grid.retries,
            retry_exceptions=_retryable(),
        )
        tracking = os.environ.get("MLFLOW_TRACKING_URI")
        # the store's tables and the model's experiment, made before runs open them side by
        # side (two processes creating a SQLite store at once race in its migrations)
        from benchmark.tracking import prepare_store, tracking_uri

        prepare_store(tracking or tracking_uri(results), model)
        args = (data, model)
        # each run sets the profile's torch threads itself (run_from_params), as `rls3 run` does
        paths = (str(results), str(datasets), tracking, progress)
        root = str(Path.cwd().resolve())  # where params' relative paths (external sets) start
        refs: dict[str, Any] = {}
        for arm, seed in runs:
            sac = refs.get(_key("sac", seed)) if arm in BUDGET_ARMS else None
            refs[_key(arm, seed)] = task.remote(*args, arm, seed, *paths, sac, root)
        pending = list(refs.values())
        shown = ""
        while pending:
            _, pending = ray.wait(pending, num_returns=len(pending), timeout=poll_seconds)
            view = _format(runs, ray.get(progress.snapshot.remote()))
            if echo and view != shown:
                print(view, flush=True)
                shown = view
        snapshot = ray.get(progress.snapshot.remote())
        for key, ref in refs.items():
            attempts = snapshot.get(key, {}).get("attempts", 0)
            try:
                summary = ray.get(ref)
            except ray.exceptions.RayError as err:
                raise GridError(
                    f"{model} {key} failed after {attempts} attempt(s) (grid.retries = "
                    f"{grid.retries}): {err}; its checkpoint is kept, run the grid again to resume"
                ) from err
            record = snapshot.get(key, {})
            report.runs[key] = {
                "attempts": attempts,
                "summary": summary,
                # when its last attempt started and ended (seconds since the epoch, as the
                # progress actor saw them): which runs ran side by side
                "started": record.get("started"),
                "finished": record.get("finished"),
            }
    report.wall_seconds = round(time.perf_counter() - start, 1)
    atomic_write_json(layout.grid(results, model), report.__dict__)
    return report


def _retryable() -> list[type[BaseException]]:
    """Application errors worth a retry: a Unity player that stopped (its run resumes)."""
    from benchmark.sim.unity_contract import UnityBackendError

    return [UnityBackendError]


def format_grid(report: GridReport) -> str:
    lines = [
        f"{report.model} grid ({report.profile} profile, {report.engine} engine): "
        f"{len(report.runs)} runs in {report.wall_seconds:.1f} s"
    ]
    for key, record in report.runs.items():
        s = record["summary"]
        lines.append(
            f"  {key:<18} {s['iterations']} iterations, {s['generated_samples']} generated "
            f"samples ({s['stopped']}); test metric {s['initial_test_metric']:.3f} -> "
            f"{s['final_test_metric']:.3f}; attempts {record['attempts']}"
        )
    return "\n".join(lines)
