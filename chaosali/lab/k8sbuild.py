"""Build real Kubernetes control-plane binaries from their Go modules.

The lab needs a genuine ``kube-apiserver`` (with ``etcd``), a
``kube-controller-manager``, a ``kube-scheduler`` and ``kwok`` (fake nodes
and kubelets); its real worker nodes also need a ``kubelet`` and a
``kube-proxy``. No Debian or PyPI package ships them, but every one is a Go
module served by the Go module proxy, so this module compiles them with the
local ``go`` toolchain into a cache directory that is reused across runs::

    $CHAOSALI_CACHE (default ~/.cache/chaosali)/k8s-<KUBERNETES_VERSION>/
        bin/      etcd kube-apiserver kube-controller-manager kube-scheduler kwok
                  kubelet kube-proxy
        build/    generated consumer modules (go.mod, go.sum) and build logs

``k8s.io/kubernetes`` (and ``go.etcd.io/etcd/server/v3``) point their
sibling modules at local directories with ``replace`` directives, so a plain
``go install pkg@version`` refuses them. Each is therefore built from a small
generated *consumer module* that requires the release and re-points every
locally-replaced module at its published tag (``k8s.io/api => k8s.io/api
v0.34.4``, ...). The list of replaced modules is read from the release's own
``go.mod`` (downloaded with ``go mod download -json``), never hard-coded.

Each binary is built only if it is absent; it is written under a temporary
name, checked with ``--version`` and renamed into place, so an interrupted
build never leaves a half-written binary behind. The Go module cache
(``~/go/pkg/mod``) and build cache (``~/.cache/go-build``) are the ordinary
defaults and are shared with every other Go build on the machine.

kube-monkey is built too when its source is given (``CHAOSALI_KUBE_MONKEY_SRC``: a ``.tar.gz``
or a directory): the module proxy refuses it (its go.mod names the module ``kube-monkey``), but
its dependencies are ordinary modules. It lands in ``<cache>/kube-monkey-<digest of the
source>/kube-monkey`` and, once built, is found there without the variable (see
:func:`kube_monkey`). It is for the lab only, never part of the package.

CoreDNS, the lab's cluster DNS, is built too (:func:`coredns`): from its own module
(``github.com/coredns/coredns``, no replace directives) with a generated ``main`` that compiles in
only the plugins the lab's Corefile uses (CoreDNS's documented way of choosing plugins at build
time), into ``bin/coredns`` beside the others.

Run ``python -m chaosali.lab.k8sbuild`` to build everything (idempotent; a
no-op taking well under a second when everything is cached).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

__all__ = [
    "KUBERNETES_VERSION",
    "ETCD_VERSION",
    "KWOK_VERSION",
    "GO_MIN_VERSION",
    "BINARIES",
    "CONTROL_PLANE_BINARIES",
    "NODE_BINARIES",
    "BuildResult",
    "cache_dir",
    "ensure_binaries",
    "build_all",
    "kube_monkey",
    "KUBE_MONKEY_SRC_ENV",
    "COREDNS_VERSION",
    "COREDNS_PLUGINS",
    "coredns",
]

#: Kubernetes release whose control-plane commands are built.
KUBERNETES_VERSION = "v1.34.4"
#: etcd server release; k8s.io/kubernetes v1.34.4's go.mod pins etcd v3.6.4.
ETCD_VERSION = "v3.6.4"
#: kwok release (client-go v0.33; go 1.24 like Kubernetes v1.34).
KWOK_VERSION = "v0.7.0"
#: Oldest Go toolchain able to build the three pinned releases.
GO_MIN_VERSION = (1, 24)
#: CoreDNS release of the lab's cluster DNS (its go.mod says go 1.26.0; client-go v0.37).
COREDNS_VERSION = "v1.15.0"
_COREDNS_GO = (1, 26)
_COREDNS_MODULE = "github.com/coredns/coredns"
#: The CoreDNS plugins compiled in (packages under ``plugin/``): those the lab's Corefile uses.
#: All of plugin.cfg would add every cloud provider's SDK to the build for nothing.
COREDNS_PLUGINS = ("errors", "log", "health", "ready", "metrics", "kubernetes", "cache", "loadbalance")

#: What every lab needs (:func:`ensure_binaries`' default), in build order.
CONTROL_PLANE_BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
)
#: What a real worker node runs besides Debian's containerd and runc.
NODE_BINARIES = ("kubelet", "kube-proxy")
#: Every binary ``python -m chaosali.lab.k8sbuild`` builds, in build order.
BINARIES = CONTROL_PLANE_BINARIES + NODE_BINARIES

_KUBE_MODULE = "k8s.io/kubernetes"
_ETCD_MODULE = "go.etcd.io/etcd/server/v3"
_KWOK_PACKAGE = "sigs.k8s.io/kwok/cmd/kwok"

#: Seconds between "still building" progress messages.
_HEARTBEAT_SECONDS = 30.0
#: Lines of go output quoted in a build failure.
_TAIL_LINES = 40
#: Upper bound for one go command (a cold kube-apiserver build on 2 cores
#: takes several minutes; this only guards against a hung toolchain).
_STEP_TIMEOUT_SECONDS = 3600.0

logger = logging.getLogger("chaostoolkit")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BuildResult:
    """Outcome of :func:`build_all` for one binary."""

    name: str
    path: Path
    built: bool
    seconds: float


def _cache_root() -> Path:
    """Return the chaosali cache root (``$CHAOSALI_CACHE`` or ``~/.cache/chaosali``)."""
    env = os.environ.get("CHAOSALI_CACHE")
    root = Path(env).expanduser() if env else Path.home() / ".cache" / "chaosali"
    return root


def _release_dir() -> Path:
    """Return the per-release directory ``<root>/k8s-<KUBERNETES_VERSION>``."""
    return _cache_root() / f"k8s-{KUBERNETES_VERSION}"


def cache_dir() -> Path:
    """Return the directory holding the built binaries.

    ``$CHAOSALI_CACHE/k8s-<KUBERNETES_VERSION>/bin`` when ``CHAOSALI_CACHE``
    is set, else ``~/.cache/chaosali/k8s-<KUBERNETES_VERSION>/bin``. The
    directory is not created here.
    """
    return _release_dir() / "bin"


def _build_dir() -> Path:
    return _release_dir() / "build"


# --------------------------------------------------------------------------
# go toolchain
# --------------------------------------------------------------------------


def _find_go() -> str:
    """Return the path of the ``go`` command or raise a clear RuntimeError."""
    go = shutil.which("go")
    if go:
        return go
    for candidate in ("/usr/local/go/bin/go", str(Path.home() / "go" / "bin" / "go")):
        if os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError(
        "go not found on PATH: install Go "
        f"{GO_MIN_VERSION[0]}.{GO_MIN_VERSION[1]}+ (https://go.dev/dl/) "
        "to build the Kubernetes control-plane binaries"
    )


def _go_env(extra: Optional[dict[str, str]] = None) -> dict[str, str]:
    """Environment for go commands: the caller's, static binaries, no prompts."""
    env = dict(os.environ)
    env["CGO_ENABLED"] = "0"
    env.setdefault("GOFLAGS", "")
    # Never ask for credentials on a VCS fallback.
    env["GIT_TERMINAL_PROMPT"] = "0"
    if extra:
        env.update(extra)
    return env


def _parse_go_version(text: str) -> Optional[tuple[int, int]]:
    match = re.search(r"go(\d+)\.(\d+)", text)
    if not match:
        return None
    return int(match.group(1)), int(match.group(2))


def _check_go(go: str, minimum: tuple[int, int] = GO_MIN_VERSION) -> str:
    """Return the toolchain version string; raise if it is older than ``minimum`` and may not switch."""
    try:
        out = subprocess.run(
            [go, "env", "GOVERSION", "GOTOOLCHAIN"],
            capture_output=True,
            text=True,
            timeout=60,
            env=_go_env(),
            cwd=str(Path.home()),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"cannot run {go!r}: {exc}") from exc
    if out.returncode != 0:
        raise RuntimeError(f"'{go} env' failed: {out.stderr.strip()[-2000:]}")
    lines = out.stdout.split("\n")
    goversion = lines[0].strip() if lines else ""
    toolchain = lines[1].strip() if len(lines) > 1 else ""
    parsed = _parse_go_version(goversion)
    if parsed is not None and parsed < minimum:
        wanted = f"{minimum[0]}.{minimum[1]}"
        if toolchain == "local" or toolchain.startswith("local"):
            raise RuntimeError(
                f"{goversion} at {go} is too old: install Go {wanted}+ "
                "(or unset GOTOOLCHAIN=local so go can fetch a newer toolchain)"
            )
        logger.warning(
            "%s is older than go%s; relying on GOTOOLCHAIN=%s to switch",
            goversion,
            wanted,
            toolchain,
        )
    return goversion


def _tail(path: Path, lines: int = _TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no output captured)"
    return "\n".join(text.rstrip().splitlines()[-lines:]) or "(no output)"


def _run_go(
    go: str,
    args: list[str],
    *,
    step: str,
    cwd: Path,
    log: Path,
    progress: Progress,
    env: Optional[dict[str, str]] = None,
) -> None:
    """Run ``go ARGS`` with output to LOG; heartbeat; RuntimeError on failure."""
    cmd = [go, *args]
    log.parent.mkdir(parents=True, exist_ok=True)
    logger.debug("%s: running %s (cwd %s)", step, " ".join(cmd), cwd)
    start = time.monotonic()
    with open(log, "ab") as out:
        out.write(f"\n$ cd {cwd} && {' '.join(cmd)}\n".encode())
        out.flush()
        try:
            proc = subprocess.Popen(
                cmd,
                cwd=str(cwd),
                env=env or _go_env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        except OSError as exc:
            raise RuntimeError(f"{step}: cannot run {go!r}: {exc}") from exc
        try:
            while True:
                try:
                    proc.wait(timeout=_HEARTBEAT_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    elapsed = time.monotonic() - start
                    if elapsed > _STEP_TIMEOUT_SECONDS:
                        proc.kill()
                        proc.wait()
                        raise RuntimeError(
                            f"{step}: timed out after {elapsed:.0f}s; "
                            f"last go output ({log}):\n{_tail(log)}"
                        ) from None
                    progress(f"{step}: still running ({elapsed:.0f}s)")
        except BaseException:
            # KeyboardInterrupt or the timeout above: never leave go running.
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            raise
    if proc.returncode != 0:
        elapsed = time.monotonic() - start
        raise RuntimeError(
            f"{step} failed (go exit {proc.returncode} after {elapsed:.0f}s): "
            f"{' '.join(cmd)}\nlast go output ({log}):\n{_tail(log)}"
        )


def _download_gomod(go: str, module: str, version: str, cwd: Path) -> tuple[str, dict]:
    """``go mod download -json MODULE@VERSION``; return (go.mod text, json info)."""
    try:
        out = subprocess.run(
            [go, "mod", "download", "-json", f"{module}@{version}"],
            capture_output=True,
            text=True,
            timeout=_STEP_TIMEOUT_SECONDS,
            env=_go_env(),
            cwd=str(cwd),
        )
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"go mod download {module}@{version} timed out") from exc
    info: dict = {}
    with contextlib.suppress(ValueError):
        info = json.loads(out.stdout)
    if out.returncode != 0 or info.get("Error") or not info.get("GoMod"):
        detail = info.get("Error") or (out.stderr + out.stdout).strip()[-3000:]
        raise RuntimeError(f"go mod download {module}@{version} failed: {detail}")
    return Path(info["GoMod"]).read_text(), info


# --------------------------------------------------------------------------
# consumer modules
# --------------------------------------------------------------------------

def _gomod(go: str, path: str) -> dict:
    """A go.mod file as Go itself reads it (``go mod edit -json``)."""
    out = subprocess.run([go, "mod", "edit", "-json", path], capture_output=True, text=True, env=_go_env())
    if out.returncode != 0:
        raise RuntimeError(f"go mod edit -json {path} failed: {out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout)


def _consumer_gomod(consumer: str, module: str, version: str, dep: dict, replaced_version: str) -> str:
    """go.mod text requiring MODULE@VERSION with its local replaces re-pointed to released modules."""
    required = {r["Path"] for r in dep.get("Require") or []}
    # Only modules the release actually requires: etcd's go.mod also
    # "replaces" forbidden paths (go.etcd.io/etcd => ./FORBIDDEN_DEPENDENCY).
    replaced = sorted({
        r["Old"]["Path"] for r in dep.get("Replace") or []
        if r["New"]["Path"].startswith(("./", "../")) and r["Old"]["Path"] != module and r["Old"]["Path"] in required
    })
    parts = [
        "// Generated by chaosali.lab.k8sbuild; rewritten when the pinned versions change.",
        f"module {consumer}",
        "",
        f"go {dep.get('Go') or '1.24.0'}",
        "",
    ]
    godebug = dep.get("GoDebug") or []
    if godebug:
        parts += [f"godebug {g['Key']}={g['Value']}" for g in godebug] + [""]
    parts += [f"require {module} {version}", ""]
    if replaced:
        parts += ["replace (", *(f"\t{m} => {m} {replaced_version}" for m in replaced), ")", ""]
    return "\n".join(parts)


def _prepare_consumer(
    go: str,
    name: str,
    module: str,
    version: str,
    replaced_version: str,
    progress: Progress,
) -> Path:
    """Create/refresh ``build/<name>/go.mod`` for MODULE@VERSION; return the dir."""
    workdir = _build_dir() / name
    workdir.mkdir(parents=True, exist_ok=True)
    gomod_path = workdir / "go.mod"
    progress(f"{name}: reading {module}@{version} go.mod from the module proxy")
    _, info = _download_gomod(go, module, version, workdir)
    text = _consumer_gomod(
        f"chaosali.invalid/k8sbuild/{name}", module, version, _gomod(go, info["GoMod"]), replaced_version
    )
    old = gomod_path.read_text() if gomod_path.exists() else None
    if old != text:
        tmp = gomod_path.with_name(f".go.mod.{os.getpid()}")
        tmp.write_text(text)
        os.replace(tmp, gomod_path)
        # go.sum is regenerated by "go build -mod=mod"; stale lines are harmless
        # but a changed requirement set is clearer with a fresh file.
        with contextlib.suppress(FileNotFoundError):
            (workdir / "go.sum").unlink()
        n = text.count(" => ")
        logger.info("wrote %s (%d replace directives)", gomod_path, n)
    return workdir


# --------------------------------------------------------------------------
# builds
# --------------------------------------------------------------------------


def _kube_ldflags() -> str:
    major, minor = KUBERNETES_VERSION.lstrip("v").split(".")[:2]
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={KUBERNETES_VERSION}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
        ]
    return " ".join(flags)


def _tmp_name(target: Path) -> Path:
    return target.with_name(f".{target.name}.tmp-{os.getpid()}")


def _verify_and_install(tmp: Path, target: Path, step: str, check: tuple[str, int] = ("--version", 0)) -> None:
    """Run ``TMP <check flag>``, expecting its exit status; then rename TMP to TARGET atomically."""
    flag, expected = check
    try:
        out = subprocess.run(
            [str(tmp), flag], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"{step}: built binary does not run: {exc}") from exc
    if out.returncode != expected:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(
            f"{step}: built binary failed '{flag}' (exit {out.returncode}): "
            f"{(out.stdout + out.stderr).strip()[-2000:]}"
        )
    tmp.chmod(0o755)
    os.replace(tmp, target)
    first = ((out.stdout + out.stderr).strip().splitlines() or [""])[0]
    logger.info("%s installed: %s", target.name, first)


def _go_build(
    go: str,
    workdir: Path,
    package: str,
    target: Path,
    ldflags: str,
    progress: Progress,
) -> None:
    tmp = _tmp_name(target)
    step = f"build {target.name}"
    try:
        _run_go(
            go,
            ["build", "-mod=mod", "-trimpath", "-ldflags", ldflags, "-o", str(tmp), package],
            step=step,
            cwd=workdir,
            log=workdir / "logs" / f"{target.name}.log",
            progress=progress,
        )
        _verify_and_install(tmp, target, step)
    finally:
        tmp.unlink(missing_ok=True)


def _build_kube(go: str, name: str, progress: Progress, state: dict) -> None:
    workdir = state.get("kube_workdir")
    if workdir is None:
        staging = "v0." + KUBERNETES_VERSION.lstrip("v").split(".", 1)[1]
        workdir = _prepare_consumer(
            go, "kubernetes", _KUBE_MODULE, KUBERNETES_VERSION, staging, progress
        )
        state["kube_workdir"] = workdir
    _go_build(
        go, workdir, f"{_KUBE_MODULE}/cmd/{name}", cache_dir() / name, _kube_ldflags(), progress
    )


def _build_etcd(go: str, name: str, progress: Progress, state: dict) -> None:
    workdir = _prepare_consumer(go, "etcd", _ETCD_MODULE, ETCD_VERSION, ETCD_VERSION, progress)
    # The server module's root package is etcd's main package (server/main.go).
    _go_build(go, workdir, _ETCD_MODULE, cache_dir() / name, "-s -w", progress)


def _build_kwok(go: str, name: str, progress: Progress, state: dict) -> None:
    # kwok's go.mod has no replace directives: "go install pkg@version" works.
    target = cache_dir() / name
    gobin = _build_dir() / f"kwok-gobin-{os.getpid()}"
    gobin.mkdir(parents=True, exist_ok=True)
    step = f"build {name}"
    try:
        _run_go(
            go,
            [
                "install",
                "-trimpath",
                "-ldflags",
                "-s -w",
                f"{_KWOK_PACKAGE}@{KWOK_VERSION}",
            ],
            step=step,
            cwd=_build_dir(),
            log=_build_dir() / "kwok" / "logs" / "kwok.log",
            progress=progress,
            env=_go_env({"GOBIN": str(gobin)}),
        )
        built = gobin / "kwok"
        if not built.exists():
            raise RuntimeError(f"{step}: go install succeeded but {built} is missing")
        tmp = _tmp_name(target)
        os.replace(built, tmp)
        try:
            _verify_and_install(tmp, target, step)
        finally:
            tmp.unlink(missing_ok=True)
    finally:
        shutil.rmtree(gobin, ignore_errors=True)


_BUILDERS: dict[str, Callable[[str, str, Progress, dict], None]] = {
    "etcd": _build_etcd,
    "kube-apiserver": _build_kube,
    "kube-controller-manager": _build_kube,
    "kube-scheduler": _build_kube,
    "kwok": _build_kwok,
    "kubelet": _build_kube,
    "kube-proxy": _build_kube,
}


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Exclusive advisory lock so concurrent callers do not build twice."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _is_ready(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def build_all(progress: Optional[Progress] = None, names: tuple[str, ...] = BINARIES) -> list[BuildResult]:
    """Build every missing binary of ``names``; return one :class:`BuildResult` per binary.

    Same contract as :func:`ensure_binaries` but also reports whether each
    binary was built in this call and how long it took.
    """
    report: Progress = progress or (lambda msg: logger.info("%s", msg))
    bindir = cache_dir()
    targets = {name: bindir / name for name in names}
    if all(_is_ready(p) for p in targets.values()):
        return [BuildResult(n, p, False, 0.0) for n, p in targets.items()]

    go = _find_go()
    bindir.mkdir(parents=True, exist_ok=True)
    results: list[BuildResult] = []
    total = time.monotonic()
    with _locked(_release_dir() / ".build.lock"):
        goversion = _check_go(go)
        report(f"using {goversion} ({go}); cache {bindir}")
        state: dict = {}
        for name in names:
            target = targets[name]
            if _is_ready(target):  # possibly built by a concurrent caller
                results.append(BuildResult(name, target, False, 0.0))
                continue
            report(f"{name}: building ({time.monotonic() - total:.0f}s elapsed in total)")
            start = time.monotonic()
            _BUILDERS[name](go, name, report, state)
            seconds = time.monotonic() - start
            report(f"{name}: built in {seconds:.1f}s -> {target}")
            results.append(BuildResult(name, target, True, seconds))
    report(f"all binaries ready in {time.monotonic() - total:.1f}s")
    return results


def ensure_binaries(progress: Optional[Progress] = None,
                    names: tuple[str, ...] = CONTROL_PLANE_BINARIES) -> dict[str, Path]:
    """Build whatever is missing of ``names`` and return ``{name: path}`` for each.

    Names: ``etcd``, ``kube-apiserver``, ``kube-controller-manager``,
    ``kube-scheduler``, ``kwok`` by default; :data:`NODE_BINARIES` (``kubelet``,
    ``kube-proxy``) for real worker nodes. Binaries already in :func:`cache_dir` are
    reused untouched. ``progress`` (default: log at INFO on the
    ``chaostoolkit`` logger) receives one message per step, with elapsed
    seconds, plus a heartbeat every 30 s during long compilations.

    Raises RuntimeError when go is missing or too old, or when a step fails
    (the message names the step and quotes the tail of the go output; the
    full log is under ``<cache>/k8s-<version>/build/*/logs``).
    """
    return {r.name: r.path for r in build_all(progress, names)}


#: Names the kube-monkey source: a tarball (``git archive`` of asobti/kube-monkey) or a directory.
KUBE_MONKEY_SRC_ENV = "CHAOSALI_KUBE_MONKEY_SRC"


def _source_digest(source: Path) -> str:
    """A short digest of a kube-monkey source: the tarball's bytes, or a directory's Go files."""
    digest = hashlib.sha256()
    if source.is_file():
        digest.update(source.read_bytes())
    else:
        for path in sorted(source.rglob("*")):
            if path.is_file() and (path.suffix == ".go" or path.name in ("go.mod", "go.sum")):
                digest.update(str(path.relative_to(source)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def _module_root(tree: Path) -> Path:
    """The directory of kube-monkey's go.mod: TREE itself or its single top directory (kube-monkey/)."""
    for candidate in (tree, *sorted(p for p in tree.iterdir() if p.is_dir())):
        if (candidate / "go.mod").is_file() and (candidate / "main.go").is_file():
            return candidate
    raise RuntimeError(f"{tree} holds no kube-monkey source (go.mod and main.go): set {KUBE_MONKEY_SRC_ENV} "
                       "to asobti/kube-monkey's source tarball or checkout")


def kube_monkey(progress: Optional[Progress] = None) -> Optional[Path]:
    """The real kube-monkey binary for the lab, built from ``$CHAOSALI_KUBE_MONKEY_SRC`` if needed.

    Without the variable, the binary of an earlier build is reused (the newest one); None when
    there is none: the lab then runs without it. Raises RuntimeError when the source is unusable or
    its build fails (the message quotes the go output's tail).
    """
    report: Progress = progress or (lambda msg: logger.info("%s", msg))
    named = os.environ.get(KUBE_MONKEY_SRC_ENV)
    if not named:
        built = sorted(_cache_root().glob("kube-monkey-*/kube-monkey"), key=lambda p: p.stat().st_mtime)
        return built[-1] if built and _is_ready(built[-1]) else None
    source = Path(named).expanduser().resolve()
    if not source.exists():
        raise RuntimeError(f"{KUBE_MONKEY_SRC_ENV}={named}: no such file or directory; point it at "
                           "kube-monkey's source tarball (e.g. ../shared/third_party/kube-monkey-7dcb3ca.tar.gz) "
                           "or unset it to run the lab without the real kube-monkey")
    directory = _cache_root() / f"kube-monkey-{_source_digest(source)}"
    target = directory / "kube-monkey"
    if _is_ready(target):
        return target
    with _locked(directory / ".build.lock"):
        if _is_ready(target):  # built by a concurrent caller
            return target
        start = time.monotonic()
        report(f"kube-monkey: building from {source}")
        with tempfile.TemporaryDirectory(dir=directory, prefix="src-") as scratch:
            tree = Path(scratch)
            if source.is_file():
                with tarfile.open(source) as archive:
                    archive.extractall(tree, filter="data")
            else:
                shutil.copytree(source, tree / "kube-monkey", ignore=shutil.ignore_patterns(".git"))
            module = _module_root(tree)
            go = _find_go()
            tmp = _tmp_name(target)
            try:
                _run_go(go, ["build", "-trimpath", "-ldflags", "-s -w", "-o", str(tmp), "."],
                        step="build kube-monkey", cwd=module, log=directory / "build.log", progress=report)
                # no --version: glog's flag parsing answers -help with its usage and exit status 2
                _verify_and_install(tmp, target, "build kube-monkey", ("-help", 2))
            finally:
                tmp.unlink(missing_ok=True)
        report(f"kube-monkey: built in {time.monotonic() - start:.1f}s -> {target}")
    return target


def kwok_pod_stages() -> list[Path]:
    """kwok's own default pod stages (from its module source), kept beside the binaries.

    The lab adds a stage of its own to them; kwok drops its defaults for a resource kind as soon
    as a configuration names any stage of that kind, so the defaults must come along.
    """
    directory = _release_dir() / "kwok-stages"
    names = ["pod-ready.yaml", "pod-complete.yaml", "pod-delete.yaml"]
    if not all((directory / name).exists() for name in names):
        go = _find_go()
        _, info = _download_gomod(go, "sigs.k8s.io/kwok", KWOK_VERSION, _release_dir())
        source = Path(info["Dir"]) / "kustomize" / "stage" / "pod" / "fast"
        directory.mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copyfile(source / name, directory / name)
    return [directory / name for name in names]


def _coredns_main() -> str:
    """The ``main`` package of the lab's CoreDNS: CoreDNS's own ``coredns.go`` with our plugins."""
    imports = "".join(f'\t_ "{_COREDNS_MODULE}/plugin/{name}"\n' for name in COREDNS_PLUGINS)
    return (f"// Generated by chaosali.lab.k8sbuild: CoreDNS {COREDNS_VERSION} with the plugins of the lab's Corefile.\n"
            f'package main\n\nimport (\n\t"{_COREDNS_MODULE}/coremain"\n{imports})\n\n'
            "func main() {\n\tcoremain.Run()\n}\n")


def coredns(progress: Optional[Progress] = None) -> Path:
    """The real CoreDNS of the lab's cluster DNS, built from its Go module if missing.

    Lands in :func:`cache_dir` as ``coredns``, with :data:`COREDNS_PLUGINS` compiled in
    (``coredns -plugins`` lists them). Raises RuntimeError when go is missing or older than
    1.26 (and may not switch), or when the build fails (the message quotes the go output's tail).
    """
    report: Progress = progress or (lambda msg: logger.info("%s", msg))
    target = cache_dir() / "coredns"
    if _is_ready(target):
        return target
    go = _find_go()
    with _locked(_release_dir() / ".build.lock"):
        if _is_ready(target):  # built by a concurrent caller
            return target
        _check_go(go, _COREDNS_GO)
        start = time.monotonic()
        report(f"coredns: building {_COREDNS_MODULE}@{COREDNS_VERSION} with {', '.join(COREDNS_PLUGINS)}")
        workdir = _prepare_consumer(go, "coredns", _COREDNS_MODULE, COREDNS_VERSION, COREDNS_VERSION, report)
        (workdir / "main.go").write_text(_coredns_main())
        target.parent.mkdir(parents=True, exist_ok=True)
        _go_build(go, workdir, ".", target, "-s -w", report)
        report(f"coredns: built in {time.monotonic() - start:.1f}s -> {target}")
    return target


def _main(argv: Optional[list[str]] = None) -> int:
    """Entry point of ``python -m chaosali.lab.k8sbuild``."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    start = time.monotonic()

    def progress(msg: str) -> None:
        print(f"[k8sbuild {time.monotonic() - start:6.1f}s] {msg}", file=sys.stderr, flush=True)

    try:
        results = build_all(progress)
        kwok_pod_stages()
        monkey = kube_monkey(progress)
        dns = coredns(progress)
    except RuntimeError as exc:
        print(f"k8sbuild: error: {exc}", file=sys.stderr)
        return 1
    print(
        f"Kubernetes {KUBERNETES_VERSION}, etcd {ETCD_VERSION}, kwok {KWOK_VERSION}; "
        f"cache {cache_dir()}"
    )
    for r in results:
        how = f"built in {r.seconds:.1f}s" if r.built else "cached"
        print(f"{r.name:24} {r.path}  ({how})")
    print(f"{'coredns':24} {dns}  (CoreDNS {COREDNS_VERSION})")
    print(f"{'kube-monkey':24} {monkey or f'not built: set {KUBE_MONKEY_SRC_ENV} to its source to build it'}")
    print(f"total {time.monotonic() - start:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
