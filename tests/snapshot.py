"""A folder's files, to check that a read-only command changed none of them."""

import hashlib
import os


def snapshot(folder):
    """{relative path: (size, mtime_ns, sha256)} of every file under `folder`."""
    files = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            stat = os.stat(path)
            files[os.path.relpath(path, folder)] = (stat.st_size, stat.st_mtime_ns, digest)
    return files
