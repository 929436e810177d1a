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

The modules are built in the order a lab needs them (etcd, Kubernetes, kwok, CoreDNS), each in
one go command (Kubernetes' five binaries load their shared packages once), linked without debug
information, while one thread downloads the next module's dependencies. The progress estimates
what is left from each module's cold build time on a 2-core machine.

Run ``python -m chaosali.lab.k8sbuild`` (or ``python3 chaosali/lab/k8sbuild.py``, before pip has
installed anything: it needs only the standard library) to build everything; ``--lab-only``
leaves kube-monkey. Idempotent: a no-op taking well under a second when everything is cached.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

__all__ = [
    "KUBERNETES_VERSION",
    "ETCD_VERSION",
    "KWOK_VERSION",
    "GO_MIN_VERSION",
    "BINARIES",
    "LAB_BINARIES",
    "CONTROL_PLANE_BINARIES",
    "NODE_BINARIES",
    "BuildResult",
    "cache_dir",
    "cache_root",
    "build_log",
    "ensure_binaries",
    "build_all",
    "kube_monkey",
    "KUBE_MONKEY_SRC_ENV",
    "COREDNS_VERSION",
    "COREDNS_PLUGINS",
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
#: The Kubernetes binaries of a cluster lab with real workers.
BINARIES = CONTROL_PLANE_BINARIES + NODE_BINARIES
#: Everything a cluster lab runs: :data:`BINARIES` and its DNS (kube-monkey is built apart: :func:`kube_monkey`).
LAB_BINARIES = BINARIES + ("coredns",)

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


def cache_root() -> Path:
    """The chaosali cache root (``$CHAOSALI_CACHE`` or ``~/.cache/chaosali``)."""
    env = os.environ.get("CHAOSALI_CACHE")
    root = Path(env).expanduser() if env else Path.home() / ".cache" / "chaosali"
    return root


def _release_dir() -> Path:
    """Return the per-release directory ``<root>/k8s-<KUBERNETES_VERSION>``."""
    return cache_root() / f"k8s-{KUBERNETES_VERSION}"


def cache_dir() -> Path:
    """Return the directory holding the built binaries.

    ``$CHAOSALI_CACHE/k8s-<KUBERNETES_VERSION>/bin`` when ``CHAOSALI_CACHE``
    is set, else ``~/.cache/chaosali/k8s-<KUBERNETES_VERSION>/bin``. The
    directory is not created here.
    """
    return _release_dir() / "bin"


def _build_dir() -> Path:
    return _release_dir() / "build"


def build_log() -> Path:
    """Where each run of the build appends its steps, with their times (bench/phases.py reads it)."""
    return _build_dir() / "k8sbuild.log"


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


def _go_env() -> dict[str, str]:
    """Environment for go commands: the caller's, static binaries, no prompts."""
    env = dict(os.environ)
    env["CGO_ENABLED"] = "0"
    env.setdefault("GOFLAGS", "")
    # Never ask for credentials on a VCS fallback.
    env["GIT_TERMINAL_PROMPT"] = "0"
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
    expected: Optional[float] = None,
) -> None:
    """Run ``go ARGS`` with output to LOG; heartbeat (against ``expected`` seconds); RuntimeError on failure."""
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
                env=_go_env(),
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
                    progress(f"{step}: still running ({_so_far(elapsed, expected)})")
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


def _so_far(elapsed: float, expected: Optional[float]) -> str:
    if not expected:
        return f"{elapsed:.0f}s"
    if elapsed <= expected:
        return f"{elapsed:.0f}s of about {expected:.0f}s"
    return f"{elapsed:.0f}s; about {expected:.0f}s on a 2-core machine"


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


def _go_build(go: str, workdir: Path, outputs: dict[str, Path], ldflags: str, progress: Progress,
              expected: Optional[float] = None) -> None:
    """Build each main package of OUTPUTS into its target, all in one go command: their shared
    packages load once, and one binary links while the next compiles."""
    scratch = Path(tempfile.mkdtemp(dir=workdir, prefix=".out-"))
    if len(outputs) == 1:
        built = {package: scratch / target.name for package, target in outputs.items()}
        out = str(next(iter(built.values())))
    else:  # go names each binary after its package's last element
        built = {package: scratch / package.rsplit("/", 1)[-1] for package in outputs}
        out = f"{scratch}/"
    step = f"build {', '.join(target.name for target in outputs.values())}"
    try:
        _run_go(go, ["build", "-mod=mod", "-trimpath", "-ldflags", ldflags, "-o", out, *outputs],
                step=step, cwd=workdir, log=workdir / "logs" / "build.log", progress=progress,
                expected=expected)
        for package, target in outputs.items():
            _verify_and_install(built[package], target, step)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@dataclass(frozen=True)
class _Module:
    """A Go module the lab's binaries are built from: one consumer module, one go command."""

    name: str  # its build directory, and what the progress calls it
    module: str
    version: str
    packages: dict[str, str]  # binary -> its main package
    #: Cold seconds on a 2-core machine (measured here: 53, 243, 65 and 53 s, the machine loaded by other
    #: work, about 4 runnable tasks): the progress's estimate.
    expected: float
    replaced_version: str = ""  # the tag its locally replaced siblings are published at
    ldflags: str = "-s -w"  # no symbol table, no DWARF: smaller binaries, shorter links
    go: tuple[int, int] = GO_MIN_VERSION
    main: Optional[Callable[[], str]] = None  # a generated main package, in the consumer module

    def prepare(self, go: str, progress: Progress) -> Path:
        """The consumer module, its dependencies downloaded (``go list -deps``, which fills go.sum):
        the network's part of the build, done while the previous module compiles."""
        _check_go(go, self.go)
        workdir = _prepare_consumer(go, self.name, self.module, self.version,
                                    self.replaced_version or self.version, progress)
        if self.main:
            (workdir / "main.go").write_text(self.main())
        start = time.monotonic()
        _run_go(go, ["list", "-mod=mod", "-deps", "-f", "{{.ImportPath}}", *self.packages.values()],
                step=f"download {self.name}'s modules", cwd=workdir, log=workdir / "logs" / "download.log",
                progress=progress)
        progress(f"{self.name}: modules downloaded in {time.monotonic() - start:.1f}s")
        return workdir


def _coredns_main() -> str:
    """The ``main`` package of the lab's CoreDNS: CoreDNS's own ``coredns.go`` with our plugins."""
    imports = "".join(f'\t_ "{_COREDNS_MODULE}/plugin/{name}"\n' for name in COREDNS_PLUGINS)
    return (f"// Generated by chaosali.lab.k8sbuild: CoreDNS {COREDNS_VERSION} with the plugins of the lab's Corefile.\n"
            f'package main\n\nimport (\n\t"{_COREDNS_MODULE}/coremain"\n{imports})\n\n'
            "func main() {\n\tcoremain.Run()\n}\n")


#: What the lab's binaries are built from, in build order: what a lab runs first.
_MODULES = (
    # the server module's root package is etcd's main package (server/main.go)
    _Module("etcd", _ETCD_MODULE, ETCD_VERSION, {"etcd": _ETCD_MODULE}, expected=50),
    _Module("kubernetes", _KUBE_MODULE, KUBERNETES_VERSION,
            {name: f"{_KUBE_MODULE}/cmd/{name}" for name in
             ("kube-apiserver", "kube-controller-manager", "kube-scheduler", *NODE_BINARIES)},
            expected=240, replaced_version="v0." + KUBERNETES_VERSION.lstrip("v").split(".", 1)[1],
            ldflags=_kube_ldflags()),
    _Module("kwok", "sigs.k8s.io/kwok", KWOK_VERSION, {"kwok": _KWOK_PACKAGE}, expected=60),
    _Module("coredns", _COREDNS_MODULE, COREDNS_VERSION, {"coredns": "."}, expected=50,
            go=_COREDNS_GO, main=_coredns_main),
)


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


def _minutes(seconds: float) -> str:
    return f"about {max(1, round(seconds / 60))} min"


def build_all(progress: Optional[Progress] = None, names: tuple[str, ...] = LAB_BINARIES) -> list[BuildResult]:
    """Build every missing binary of ``names``; return one :class:`BuildResult` per binary.

    Same contract as :func:`ensure_binaries` but also reports whether each
    binary was built in this call and how long it took.
    """
    report: Progress = progress or (lambda msg: logger.info("%s", msg))
    unknown = sorted(set(names) - set(LAB_BINARIES))
    if unknown:
        raise ValueError(f"no such lab binary: {', '.join(unknown)}; choose from {', '.join(LAB_BINARIES)}")
    targets = {name: cache_dir() / name for name in names}
    if all(_is_ready(p) for p in targets.values()):
        return [BuildResult(n, p, False, 0.0) for n, p in targets.items()]
    go = _find_go()
    cache_dir().mkdir(parents=True, exist_ok=True)
    built: dict[str, float] = {}
    total = time.monotonic()
    with _locked(_release_dir() / ".build.lock"):
        report(f"using {_check_go(go)} ({go}); cache {cache_dir()}")
        # what is still missing once the lock is ours (a concurrent caller may have built some)
        plan = [(module, {name: targets[name] for name in module.packages
                          if name in targets and not _is_ready(targets[name])}) for module in _MODULES]
        plan = [(module, outputs) for module, outputs in plan if outputs]
        left = sum(module.expected for module, _ in plan)
        # one thread downloads the next module's dependencies while this one compiles
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="k8sbuild-download") as downloads:
            prepared = [downloads.submit(module.prepare, go, report) for module, _ in plan]
            for (module, outputs), download in zip(plan, prepared):
                report(f"{module.name}: building {', '.join(outputs)} ({time.monotonic() - total:.0f}s elapsed; "
                       f"{_minutes(left)} left on a 2-core machine)")
                workdir = download.result()
                start = time.monotonic()
                _go_build(go, workdir, {module.packages[name]: target for name, target in outputs.items()},
                          module.ldflags, report, module.expected)
                seconds = time.monotonic() - start
                built.update(dict.fromkeys(outputs, seconds))
                left -= module.expected
                report(f"{module.name}: built in {seconds:.1f}s -> {cache_dir()}")
    report(f"binaries ready in {time.monotonic() - total:.1f}s")
    return [BuildResult(name, target, name in built, built.get(name, 0.0)) for name, target in targets.items()]


def ensure_binaries(progress: Optional[Progress] = None,
                    names: tuple[str, ...] = CONTROL_PLANE_BINARIES) -> dict[str, Path]:
    """Build whatever is missing of ``names`` and return ``{name: path}`` for each.

    Names: ``etcd``, ``kube-apiserver``, ``kube-controller-manager``,
    ``kube-scheduler``, ``kwok`` by default; :data:`NODE_BINARIES` (``kubelet``,
    ``kube-proxy``) for real worker nodes; ``coredns`` for the cluster's DNS. Binaries already
    in :func:`cache_dir` are reused untouched. ``progress`` (default: log at INFO on the
    ``chaostoolkit`` logger) receives one message per step, with elapsed
    seconds and an estimate, plus a heartbeat every 30 s during long compilations.

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
        built = sorted(cache_root().glob("kube-monkey-*/kube-monkey"), key=lambda p: p.stat().st_mtime)
        return built[-1] if built and _is_ready(built[-1]) else None
    source = Path(named).expanduser().resolve()
    if not source.exists():
        raise RuntimeError(f"{KUBE_MONKEY_SRC_ENV}={named}: no such file or directory; point it at "
                           "kube-monkey's source tarball (e.g. ../shared/third_party/kube-monkey-7dcb3ca.tar.gz) "
                           "or unset it to run the lab without the real kube-monkey")
    directory = cache_root() / f"kube-monkey-{_source_digest(source)}"
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


def _main(argv: Optional[list[str]] = None) -> int:
    """Entry point of ``python -m chaosali.lab.k8sbuild`` (or of this file run as a script: it needs
    only the standard library and Go, so that it can start before pip has installed anything)."""
    parser = argparse.ArgumentParser(prog="k8sbuild", description="Build the lab's Kubernetes binaries, "
                                     "CoreDNS and, given its source, kube-monkey into the cache.")
    parser.add_argument("--lab-only", action="store_true",
                        help="only what a cluster lab runs (kube-monkey, which only its drills run, is left)")
    options = parser.parse_args(argv)
    # killed (scripts/setup stopping): unwind, so that the go command running is killed too
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    start = time.monotonic()

    log = build_log()
    log.parent.mkdir(parents=True, exist_ok=True)

    def progress(msg: str) -> None:
        line = f"[k8sbuild {time.monotonic() - start:6.1f}s] {msg}"
        print(line, file=sys.stderr, flush=True)
        with open(log, "a") as out:
            out.write(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {line}\n")

    progress(f"start: {' '.join(argv or []) or 'everything'}")

    try:
        results = build_all(progress)
        kwok_pod_stages()
        monkey = None if options.lab_only else kube_monkey(progress)
    except RuntimeError as exc:
        print(f"k8sbuild: error: {exc}", file=sys.stderr)
        return 1
    print(f"Kubernetes {KUBERNETES_VERSION}, etcd {ETCD_VERSION}, kwok {KWOK_VERSION}, "
          f"CoreDNS {COREDNS_VERSION}; cache {cache_dir()}")
    for r in results:
        how = f"built in {r.seconds:.1f}s" if r.built else "cached"
        print(f"{r.name:24} {r.path}  ({how})")
    if not options.lab_only:
        print(f"{'kube-monkey':24} {monkey or f'not built: set {KUBE_MONKEY_SRC_ENV} to its source to build it'}")
    print(f"total {time.monotonic() - start:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
