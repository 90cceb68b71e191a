"""Files that `sudo emsctl ...` creates beside the service's state belong to the service.

The service runs as a dynamic user (deploy/ems.service) that exists only while it runs, so
`sudo -u` cannot name it; a command run as root gives what it creates to the owner of the
directory it creates it in, the state directory's owner.
"""

from __future__ import annotations

import os
from pathlib import Path


def give_to_directory_owner(path: Path) -> None:
    """As root: `path` belongs to its directory's owner and group (SQLite gives its -wal and
    -shm files the database's owner by itself). Otherwise nothing."""
    if os.geteuid() != 0:
        return
    owner = path.parent.stat()
    info = path.stat()
    if (info.st_uid, info.st_gid) != (owner.st_uid, owner.st_gid):
        os.chown(path, owner.st_uid, owner.st_gid)
