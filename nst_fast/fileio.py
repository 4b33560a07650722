"""Writing files so that a final name only ever holds a complete file."""
from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path

from .errors import NSTError
from .uris import URIPath


def _current_umask() -> int:
    """The process umask, read without changing it where the OS allows.

    os.umask can only be read by setting it, which briefly changes it for every thread; Linux shows
    it in /proc, so only other systems pay for the set-and-restore.
    """
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike):
    """Yield a temporary path beside `final`; rename it into place only if the block succeeds.

    The temporary name starts with '.' and ends with '.part', so a crash leaves at most a hidden
    partial file, never a truncated file under the final name. A URIPath yields a local temporary
    file, uploaded and moved into place (URIPath.atomic_path).
    """
    if isinstance(final, URIPath):
        with final.atomic_path() as tmp:
            yield tmp
        return
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    # the writer's pid in the name tells a later run whether the file is being written or was left
    fd, tmp = tempfile.mkstemp(prefix=f".{final.stem}.pid{os.getpid()}.", suffix=f"{final.suffix}.part",
                               dir=final.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp (and some writers, such as safetensors) create 0600; give the file the mode
        # open() would have, so outputs stay readable by others as usual.
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


_WRITER = re.compile(r"\.pid(\d+)\.[^.]*\.[^/]*part$")


def remove_stale_parts(folder: str | os.PathLike | URIPath, outputs: set[str] = frozenset()) -> list:
    """Delete the partial files of `atomic_path` in `folder` whose writer is no longer running
    (a run killed mid-write); those of live writers stay. Returns what was removed. In a URI's
    folder, where no writer's pid can be checked, those of the files named `outputs` (the run's
    own, see URIPath.remove_parts)."""
    if isinstance(folder, URIPath):
        return folder.remove_parts(set(outputs))
    removed = []
    for part in Path(folder).glob(".*.part"):
        writer = _WRITER.search(part.name)
        if writer and not _alive(int(writer.group(1))):
            with contextlib.suppress(OSError):
                part.unlink()
                removed.append(part)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def check_writable(path: str | os.PathLike, folder: bool = True) -> None:
    """Refuse an output place before any work is done for it: a folder (or, with `folder` False,
    a file's folder) where we cannot create, write and remove a probe file. A folder that does not
    exist yet is probed in its nearest existing parent, so nothing is created and nothing is left."""
    if isinstance(path, URIPath):
        return path.check_writable(folder)
    path = Path(path)
    try:
        if folder and path.exists() and not path.is_dir():
            raise NSTError(f"{path}: exists and is not a folder")
        if not folder and path.is_dir():
            raise NSTError(f"{path}: is a folder; give a file name")
        where = path if folder else path.parent
        while not where.exists():
            where = where.parent
        if not where.is_dir():
            raise NSTError(f"{path}: cannot be created, {where} is a file")
        fd, probe = tempfile.mkstemp(prefix=".nst-fast-probe.", dir=where)
        try:
            os.write(fd, b"probe")
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as e:
        raise NSTError(f"{path}: cannot write there ({e.strerror or type(e).__name__})") from None
