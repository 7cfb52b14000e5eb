"""Downloads that are verified and atomic: fetch one :class:`Source`, check it, unpack it.

A download goes to a staging folder, is checked against its published checksum (and the
length the server announced), and only then is moved into place; an archive is extracted into
a scratch folder renamed into place when complete. So a file or folder that exists is whole,
and an interrupted or corrupt download leaves nothing behind. Every failure is a
:class:`RealDataError` whose message says what to do.

Which data sets exist (the registry) is :data:`helpers.data.real.SOURCES`. This module is
light to import (torchvision is loaded only when something is downloaded or extracted), since
:mod:`helpers.data.cache` uses its :func:`file_digest`.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

USER_AGENT = "transfer-learning-course"


class RealDataError(RuntimeError):
    """A real data set cannot be fetched or read; the message says what to do."""


class RealDataMissing(RealDataError):
    """``TL_DATA=real`` but the data set was never fetched; the message gives the command."""


@dataclass(frozen=True)
class Source:
    """One downloadable file and how to check and unpack it."""

    name: str
    url: str
    filename: str  # name of the download on disk
    checksum: str  # hex digest of the download
    algorithm: str  # hashlib name of the checksum: "md5" or "sha256"
    size_note: str  # what the user is about to download
    group: str  # the fetch_real.py command that fetches it: "images" or "speech"
    folder: str | None = None  # archives are extracted into this folder (None: used as is)


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file (``algorithm``: a hashlib name), read in 4-MiB blocks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _log(message: str) -> None:
    print(f"[real] {message}", flush=True)


@contextmanager
def _network_errors(url: str) -> Iterator[None]:
    """Turn the many ways a download fails into one RealDataError that says what to do."""
    try:
        yield
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise RealDataError(f"cannot download {url} ({reason}); nothing was kept. Check the network and run "
                            "the command again. Only real data sets need a network: the default course "
                            "(TL_DATA=synthetic) runs offline.") from exc


def _remote_size(url: str) -> int | None:
    """Content-Length announced by the server (None when it does not say)."""
    request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            length = response.headers.get("Content-Length", "")
    except urllib.error.HTTPError:
        return None  # some servers refuse HEAD: the checksum still guards the download
    return int(length) if length.isdigit() else None


def _verify(path: Path, source: Source, expected_bytes: int | None = None) -> None:
    """Raise RealDataError unless ``path`` is complete and has the published checksum."""
    size = path.stat().st_size
    if expected_bytes is not None and size < expected_bytes:
        raise RealDataError(f"the download of {source.url} was interrupted ({size:,} of {expected_bytes:,} "
                            "bytes); nothing was kept: run the command again to restart it")
    actual = file_digest(path, source.algorithm)
    if actual != source.checksum:
        raise RealDataError(f"checksum mismatch for {source.filename} from {source.url}: expected "
                            f"{source.algorithm} {source.checksum}, got {actual}; the file was deleted. "
                            "Run the command again; if it persists the server serves a different file.")


def _download(source: Source, target: Path) -> None:
    """Download into a staging folder, verify, then move into place (never a partial file)."""
    from torchvision.datasets.utils import download_url  # here: importing torchvision is slow

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{source.filename}."))
    try:
        staged = staging / source.filename
        with _network_errors(source.url):
            expected = _remote_size(source.url)
            download_url(source.url, str(staging), source.filename)
        _verify(staged, source, expected)
        os.chmod(staged, 0o644)
        os.replace(staged, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _extract(archive: Path, ready: Path) -> None:
    """Extract into a scratch folder renamed to ``ready``: a folder that exists is complete."""
    from torchvision.datasets.utils import extract_archive

    scratch = Path(tempfile.mkdtemp(dir=ready.parent, prefix=f".{ready.name}."))
    try:
        extract_archive(str(archive), str(scratch))
        os.chmod(scratch, 0o755)
        os.replace(scratch, ready)
    except (tarfile.TarError, EOFError) as exc:
        raise RealDataError(f"cannot extract {archive} ({exc}): delete it and fetch again") from exc
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def fetch(source: Source, root: Path) -> Path:
    """Download (if needed), verify and extract ``source`` under ``root``.

    Returns the extracted folder (archives) or the verified file. A verified download or a
    complete extraction already under ``root`` is not fetched again; a download that no longer
    matches its checksum is.
    """
    archive = root / source.filename
    ready = root / source.folder if source.folder else archive
    if source.folder and ready.is_dir():
        return ready
    if archive.exists() and file_digest(archive, source.algorithm) != source.checksum:
        _log(f"{archive} does not match its checksum: downloading it again")
        archive.unlink()
    if not archive.exists():
        _log(f"downloading {source.size_note} from {source.url}")
        _download(source, archive)
    if source.folder:
        _log(f"extracting {archive.name}")
        _extract(archive, ready)
    return ready
