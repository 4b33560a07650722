"""Files named by URIs (`s3://bucket/key`, `gs://bucket/key`, `file:///abs/path`) through pyarrow
filesystems, so that `run --ray` can read its inputs from and write its outputs to an object store
as well as a shared filesystem.

URIPath offers the part of pathlib.Path the batch runner uses (joining, name, stem, suffix, parent,
exists, is_dir, stat, read_bytes), so planning, the manifest and the report take either kind. What
an object store does differently is kept here, in three places: listing a tree (`files`), writing
a file so that its final name only ever holds a complete one (`atomic_path`) and removing what a
killed writer left (`remove_parts`); fileio and images hand URIPaths to these. pyarrow is imported
on first use only: local paths never load it.
"""
from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import SimpleNamespace
from urllib.parse import quote, unquote, urlsplit

from .errors import NSTError

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# atomic_path's hidden partial objects: .{stem}.{8 hex}{suffix}.part beside the final name
_PART = re.compile(r"^\.(?P<stem>.+)\.[0-9a-f]{8}(?P<suffix>\.[^.]*)?\.part$")


def is_uri(value) -> bool:
    """A string naming a file by URI (scheme://...). A pathlib path never is one: it folds '//'."""
    return isinstance(value, str) and bool(_SCHEME.match(value))


def location(value: str | os.PathLike | URIPath) -> Path | URIPath:
    """A URI as a URIPath, anything else as a Path."""
    if isinstance(value, URIPath):
        return value
    return URIPath.parse(value) if is_uri(value) else Path(value)


def as_path(value: str | os.PathLike | URIPath) -> Path | URIPath:
    """A URIPath as it is, anything else as Path(value): what the image functions took before."""
    return value if isinstance(value, URIPath) else Path(value)


class UnreadableURI(OSError):
    """A file the filesystem would not give (no permission, no credentials, the store unreachable)."""


@dataclass(frozen=True)
class URIPath:
    """A file or folder in the filesystem of a URI. str() gives the URI back (percent-encoded, so it
    parses to the same path on every node)."""

    base: str  # scheme://authority: "s3://bucket", "gs://bucket", "file://"
    key: str  # the path below it, decoded, from "/": "/photos/a b.jpg"
    query: str = ""  # filesystem options (e.g. "endpoint_override=..."), kept by every path below it

    @classmethod
    def parse(cls, uri: str) -> URIPath:
        parts = urlsplit(uri)
        if parts.fragment:  # pyarrow would drop it silently and name another file
            raise NSTError(f"{uri}: '#' starts a URI fragment; write a '#' in a name as %23")
        key = str(PurePosixPath("/" + unquote(parts.path).lstrip("/")))  # folds '//', drops a trailing '/'
        return cls(f"{parts.scheme}://{parts.netloc}", key, parts.query)

    def __str__(self) -> str:
        return self.base + quote(self.key) + (f"?{self.query}" if self.query else "")

    # the pure part of pathlib.Path
    @property
    def _pure(self) -> PurePosixPath:
        return PurePosixPath(self.key)

    @property
    def name(self) -> str:
        return self._pure.name

    @property
    def stem(self) -> str:
        return self._pure.stem

    @property
    def suffix(self) -> str:
        return self._pure.suffix

    @property
    def parent(self) -> URIPath:
        return URIPath(self.base, str(self._pure.parent), self.query)

    def __truediv__(self, other: str | os.PathLike) -> URIPath:
        return URIPath(self.base, str(self._pure / os.fspath(other)), self.query)

    def with_suffix(self, suffix: str) -> URIPath:
        return URIPath(self.base, str(self._pure.with_suffix(suffix)), self.query)

    def resolve(self) -> URIPath:
        return self  # no links to follow in an object store; `local` gives a file:// URI's own path

    def local(self) -> Path | None:
        """A file:// URI's path on this machine (to compare with local paths), None for others."""
        return Path(self.fs_path).resolve() if self.base == "file://" else None

    # the filesystem
    @property
    def filesystem(self):
        return _filesystem(self.base, self.query)[0]

    @property
    def fs_path(self) -> str:
        """The path pyarrow's filesystem takes: "bucket/photos/a.jpg" on S3, "/photos/a.jpg" for file://."""
        return (_filesystem(self.base, self.query)[1] + self.key).rstrip("/") or "/"

    def _type(self) -> str:
        return self.filesystem.get_file_info(self.fs_path).type.name  # NotFound, File, Directory, Unknown

    def exists(self) -> bool:
        return self._type() != "NotFound"

    def is_dir(self) -> bool:
        return self._type() == "Directory"  # on S3 and GCS: a prefix that holds objects

    def is_file(self) -> bool:
        return self._type() == "File"

    def is_symlink(self) -> bool:
        return False

    def stat(self) -> SimpleNamespace:
        info = self.filesystem.get_file_info(self.fs_path)
        if info.type.name == "NotFound":
            raise FileNotFoundError(2, "No such file", str(self))
        return SimpleNamespace(st_size=info.size)

    def read_bytes(self) -> bytes:
        try:
            # compression=None: pyarrow would otherwise decompress by suffix (.gz, .bz2, ...)
            with self.filesystem.open_input_stream(self.fs_path, compression=None) as stream:
                return stream.read()
        except FileNotFoundError:
            raise
        except OSError as e:
            raise UnreadableURI(f"cannot read it ({' '.join(str(e).split())})") from e

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def files(self) -> list[PurePosixPath]:
        """Every file below this folder, relative to it, from one recursive listing."""
        from pyarrow.fs import FileSelector

        root = self.fs_path.rstrip("/") + "/"
        return [PurePosixPath(info.path[len(root):]) for info in
                self.filesystem.get_file_info(FileSelector(self.fs_path, recursive=True)) if info.is_file]

    @contextlib.contextmanager
    def atomic_path(self):
        """fileio.atomic_path for a URI: the block writes a local temporary file; only if it succeeds,
        that is uploaded under a hidden name beside this one and moved into place. On S3 and GCS a
        move is copy + delete: the final name still never holds a half-written object."""
        with tempfile.TemporaryDirectory(prefix="nst-fast-") as folder:
            local = Path(folder) / f"part{self.suffix}"
            yield local
            part = self.parent / f".{self.stem}.{uuid.uuid4().hex[:8]}{self.suffix}.part"
            try:
                try:
                    _upload(local, part)
                except FileNotFoundError:  # a filesystem with real folders (file://): make the parent
                    self.filesystem.create_dir(self.parent.fs_path, recursive=True)
                    _upload(local, part)
                self.filesystem.move(part.fs_path, self.fs_path)
            except BaseException:
                with contextlib.suppress(OSError):
                    self.filesystem.delete_file(part.fs_path)
                raise

    def remove_parts(self, outputs: set[str]) -> list[URIPath]:
        """Delete the hidden partial objects `atomic_path` left in this folder for the files named
        `outputs` (a writer killed between upload and move). Unlike local partial files, these
        carry no pid: a writer on another node cannot be asked whether it is still running, so only
        the run's own outputs' leftovers are removed."""
        from pyarrow.fs import FileSelector

        removed = []
        for info in self.filesystem.get_file_info(FileSelector(self.fs_path, allow_not_found=True)):
            found = _PART.match(info.base_name)
            if info.is_file and found and found["stem"] + (found["suffix"] or "") in outputs:
                with contextlib.suppress(OSError):
                    self.filesystem.delete_file(info.path)
                    removed.append(self / info.base_name)
        return removed

    def check_writable(self, folder: bool = True) -> None:
        """fileio.check_writable for a URI: a probe object written and deleted in the folder (in the
        nearest existing one on a filesystem with real folders), so nothing is left."""
        try:
            if folder and self.is_file():
                raise NSTError(f"{self}: exists and is not a folder")
            if not folder and self.is_dir():
                raise NSTError(f"{self}: is a folder; give a file name")
            where = self if folder else self.parent
            while True:
                probe = where / f".nst-fast-probe.{uuid.uuid4().hex[:8]}"
                try:
                    with self.filesystem.open_output_stream(probe.fs_path, compression=None) as stream:
                        stream.write(b"probe")
                    break
                except FileNotFoundError:  # file://: the folder does not exist yet; try its parent
                    if where.key == "/":
                        raise
                    where = where.parent
            self.filesystem.delete_file(probe.fs_path)
        except OSError as e:
            raise NSTError(f"{self}: cannot write there ({' '.join(str(e).split())})") from None


def _upload(local: Path, target: URIPath) -> None:
    with open(local, "rb") as source, target.filesystem.open_output_stream(target.fs_path, compression=None) as sink:
        shutil.copyfileobj(source, sink, 1 << 20)


@functools.lru_cache(maxsize=None)
def _filesystem(base: str, query: str):
    """The pyarrow filesystem of `base` (made once per process: on S3 it looks up the bucket's
    region) and its root path: "bucket" for s3://bucket, "" for file://. Credentials come from the
    usual environment (AWS_*, GOOGLE_APPLICATION_CREDENTIALS, ...) or the query."""
    try:
        from pyarrow import fs
    except ImportError:
        raise NSTError(f"{base}: URIs are read through pyarrow: pip install 'nst-fast[ray]'") from None
    try:
        filesystem, root = fs.FileSystem.from_uri(base + "/" + (f"?{query}" if query else ""))
    except (ValueError, OSError) as e:  # ArrowInvalid: an unknown scheme; OSError: e.g. no such bucket
        raise NSTError(f"{base}: no filesystem for this URI ({' '.join(str(e).split())})") from None
    return filesystem, root.rstrip("/")
