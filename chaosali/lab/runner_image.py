"""The image of scheduled drills (``chaosali schedule``) for the lab, built here without a registry.

The ``Containerfile`` of the repository builds the same image where there is a registry. Here it
is two layers, each cached in ``$CHAOSALI_CACHE/runner-image`` (default ``~/.cache/chaosali``) under
the hash of what makes it:

- the base: Debian's ``python3``, ``python3-venv`` and ``ca-certificates`` (``mmdebstrap``), a
  virtual environment at ``/opt/chaosali`` with chaosali's dependencies and the ``chaos`` command
  installed from wheels that ``pip wheel`` fetched once (nothing is fetched when a pod starts),
  a user ``chaosali`` (uid 10001), trimmed of documentation;
- the package: the wheel of this source tree installed over it (``pip install --root``).

A change of chaosali's code rebuilds the package layer only. The Docker archive is imported into
each real worker's containerd (``ctr images import``), as ``sh/kubelet.sh`` imports the lab's
other images, under the name ``chaosali schedule`` gives pods by default.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Callable

from chaosali.lab.hosts import LabError
from chaosali.lab.k8sbuild import cache_root
from chaosali.schedule.manifests import DEFAULT_IMAGE, RUNNER_UID

__all__ = ["cache", "IMAGE", "ImageError", "build", "import_into", "full_name", "sizes"]

IMAGE = DEFAULT_IMAGE
SUITE = "bookworm"
PACKAGES = ("python3", "python3-venv", "ca-certificates")
VENV = "/opt/chaosali"
PYTHON = "python3.11"  # bookworm's: the package layer is installed for it by this machine's pip
REPO = Path(__file__).resolve().parents[2]
# trimmed from the base: what a drill never reads
_TRIM = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "usr/share/lintian",
         "var/cache/apt", "var/lib/apt/lists", "var/log")


class ImageError(LabError):
    """The image cannot be built or imported; the message says what to do."""


def full_name(image: str = IMAGE) -> str:
    """The name containerd stores an image under (a short name is Docker Hub's)."""
    first = image.split("/", 1)[0]
    if "/" not in image:
        return f"docker.io/library/{image}"
    return image if "." in first or ":" in first or first == "localhost" else f"docker.io/{image}"


def cache() -> Path:
    """Where the layers are kept: beside the lab's binaries, so that one variable empties every cache."""
    return cache_root() / "runner-image"


def build(progress: Callable[[str], None] = print, source: Path = REPO) -> Path:
    """The image's Docker archive, built or taken from the cache; returns its path."""
    if sys.version_info[:2] != (3, 11):
        raise ImageError(f"the lab image's package layer is installed for Debian {SUITE}'s Python 3.11 by this "
                         f"machine's pip, but it runs Python {platform.python_version()}: build it with Python 3.11")
    if not (source / "pyproject.toml").is_file():
        raise ImageError(f"{source} has no pyproject.toml: the lab image is built from chaosali's source tree")
    kept = cache()
    kept.mkdir(parents=True, exist_ok=True)
    package_key = _tree_hash(source)
    with tempfile.TemporaryDirectory(prefix="chaosali-image-") as work:
        wheel = _cached(kept / f"wheel-{package_key}", lambda target: _wheel(source, target), progress, "wheel")
        wheel_file = next(wheel.glob("*.whl"))
        requirements = _requirements(wheel_file)
        base_key = hashlib.sha256(json.dumps([SUITE, PACKAGES, VENV, RUNNER_UID, requirements]).encode()).hexdigest()[:16]
        wheels = _cached(kept / f"wheels-{base_key}", lambda target: _dependency_wheels(wheel_file, target),
                         progress, "dependency wheels")
        base = _cached(kept / f"base-{base_key}.tar", lambda target: _base_layer(wheels, target, Path(work)),
                       progress, "base layer (Debian and the dependencies)")
        package = _cached(kept / f"package-{package_key}.tar", lambda target: _package_layer(wheel_file, target),
                          progress, "package layer")
        image = _cached(kept / f"image-{base_key}-{package_key}.tar",
                        lambda target: _docker_archive(target, [base, package]), progress, "image archive")
    _prune(kept, {wheel, wheels, base, package, image})
    return image


def _prune(kept: Path, current: set[Path]) -> None:
    """Only the latest of each: a source tree that changes would fill the cache with images."""
    for path in kept.iterdir():
        if path not in current:
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def _cached(path: Path, make: Callable[[Path], None], progress: Callable[[str], None], what: str) -> Path:
    if path.exists():
        return path
    started = time.monotonic()
    partial = path.with_name(f"partial-{path.name}")  # the same suffix: mmdebstrap writes a .tar for a .tar
    shutil.rmtree(partial, ignore_errors=True) if partial.is_dir() else partial.unlink(missing_ok=True)
    make(partial)
    partial.rename(path)
    progress(f"built the {what} in {time.monotonic() - started:.1f} s: {path}")
    return path


def _tree_hash(source: Path) -> str:
    """What the package layer is made of: pyproject.toml and every file of the package."""
    digest = hashlib.sha256()
    files = [source / "pyproject.toml", *sorted(p for p in (source / "chaosali").rglob("*") if p.is_file()
                                                and "__pycache__" not in p.parts and p.suffix != ".pyc")]
    for path in files:
        digest.update(str(path.relative_to(source)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise ImageError(f"{what} failed ({' '.join(command[:3])} ...):\n{(done.stderr or done.stdout)[-2000:]}")


def _pip(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *arguments]


def _wheel(source: Path, target: Path) -> None:
    target.mkdir()
    _run(_pip("wheel", "--no-deps", "-w", str(target), str(source)), "building chaosali's wheel")


def _requirements(wheel: Path) -> list[str]:
    """The wheel's dependencies with the ``chaos`` command (its ``cli`` extra), as pip reads them."""
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(name for name in archive.namelist() if name.endswith(".dist-info/METADATA"))
        lines = archive.read(metadata).decode().splitlines()
    requirements = []
    for line in lines:
        if line.startswith("Requires-Dist: "):
            requirement, _, marker = line.removeprefix("Requires-Dist: ").partition(";")
            if not marker.strip() or marker.strip() == 'extra == "cli"':
                requirements.append(requirement.strip())
    return sorted(requirements)


def _dependency_wheels(wheel: Path, target: Path) -> None:
    """Wheels of every dependency (fetched once, by pip, from the package index it is set to use)."""
    target.mkdir()
    _run(_pip("wheel", "--prefer-binary", "-w", str(target), *_requirements(wheel)),
         "fetching the dependencies' wheels (pip wheel)")


def _base_layer(wheels: Path, target: Path, work: Path) -> None:
    if not shutil.which("mmdebstrap"):
        raise ImageError("the lab image's base is made by Debian's mmdebstrap: apt-get install mmdebstrap")
    hooks = [
        f'mkdir -p "$1/tmp/wheels" && cp {wheels}/*.whl "$1/tmp/wheels/"',
        f'chroot "$1" python3 -m venv {VENV}',
        f'chroot "$1" sh -c "{VENV}/bin/pip install --disable-pip-version-check -q --no-index --no-deps '
        f'/tmp/wheels/*.whl && {VENV}/bin/pip uninstall -q -y pip"',
        f'echo "chaosali:x:{RUNNER_UID}:{RUNNER_UID}:chaosali drills:/tmp:/usr/sbin/nologin" >> "$1/etc/passwd"',
        f'echo "chaosali:x:{RUNNER_UID}:" >> "$1/etc/group"',
        'rm -rf "$1/tmp/wheels" ' + " ".join(f'"$1/{path}"' for path in _TRIM),
        'mkdir -p "$1/var/log" "$1/var/lib/chaosali/journals" "$1/etc/chaosali/drill" "$1/var/run/chaosali/ssh"',
    ]
    command = ["mmdebstrap", "--mode=root", "--variant=essential", "--quiet", f"--include={','.join(PACKAGES)}",
               *(f"--customize-hook={hook}" for hook in hooks), SUITE, str(target)]
    _run(command, f"mmdebstrap of Debian {SUITE}")


def _package_layer(wheel: Path, target: Path) -> None:
    """The wheel installed under ``VENV`` as Debian's Python finds it there; its scripts run by
    the environment's Python. ``--target``: pip then leaves this machine's own install alone."""
    with tempfile.TemporaryDirectory(prefix="chaosali-package-") as stage:
        installed = Path(stage) / "site-packages"
        _run(_pip("install", "--no-deps", "--no-index", "--no-compile", "--target", str(installed), str(wheel)),
             "installing chaosali's wheel")
        for script in (installed / "bin").iterdir():
            lines = script.read_bytes().split(b"\n", 1)
            if lines[0].startswith(b"#!"):
                script.write_bytes(f"#!{VENV}/bin/python3".encode() + b"\n" + lines[1])
        venv = VENV.lstrip("/")
        with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as tar:
            tar.add(installed / "bin", f"{venv}/bin", filter=_owned_by_root)
            for path in sorted(installed.iterdir()):
                if path.name != "bin":
                    tar.add(path, f"{venv}/lib/{PYTHON}/site-packages/{path.name}", filter=_owned_by_root)


def _owned_by_root(entry: tarfile.TarInfo) -> tarfile.TarInfo:
    entry.uid = entry.gid = 0
    entry.uname = entry.gname = ""
    return entry


def _docker_archive(target: Path, layers: list[Path]) -> None:
    """The archive ``docker save`` writes, of the layers in order, streamed from their files."""
    diff_ids = [_sha256(layer) for layer in layers]
    architecture = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    config = json.dumps({
        "architecture": architecture, "os": "linux",
        "config": {"Env": [f"PATH={VENV}/bin:/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONDONTWRITEBYTECODE=1"],
                   "User": f"{RUNNER_UID}:{RUNNER_UID}", "WorkingDir": "/tmp",
                   "Cmd": ["python3", "-m", "chaosali.schedule.runner"]},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{d}" for d in diff_ids]},
        "history": [{"created_by": f"mmdebstrap {SUITE} {' '.join(PACKAGES)}; a venv with the dependencies"},
                    {"created_by": "pip install chaostoolkit-ali (this source tree's wheel)"}],
    }, sort_keys=True).encode()
    config_name = f"{hashlib.sha256(config).hexdigest()}.json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [IMAGE],
                            "Layers": [f"{d}/layer.tar" for d in diff_ids]}]).encode()
    with tarfile.open(target, "w") as tar:
        for name, data in ((config_name, config), ("manifest.json", manifest)):
            entry = tarfile.TarInfo(name)
            entry.size, entry.mode = len(data), 0o644
            tar.addfile(entry, io.BytesIO(data))
        for layer, diff_id in zip(layers, diff_ids):
            tar.add(layer, f"{diff_id}/layer.tar", filter=_owned_by_root)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as layer:
        for chunk in iter(lambda: layer.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def import_into(sockets: list[Path], archive: Path) -> None:
    """Import the archive into each containerd (its socket) where the kubelets look for images."""
    for socket in sockets:
        if not socket.exists():
            raise ImageError(f"no containerd answers at {socket}: is the lab's real worker up? (chaosali lab status)")
        _run(["ctr", "--address", str(socket), "--namespace", "k8s.io", "images", "import", str(archive)],
             f"importing {archive.name} into the containerd of {socket}")


def sizes(archive: Path) -> dict[str, int]:
    """The archive's bytes and each of its layers'."""
    with tarfile.open(archive) as tar:
        return {"archive": os.path.getsize(archive),
                **{member.name: member.size for member in tar.getmembers() if member.name.endswith("layer.tar")}}
