"""Writing files so that a final name only ever holds a complete file."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


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
    partial file, never a truncated file under the final name.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=f"{final.suffix}.part", dir=final.parent)
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
