"""The `magiclink` operator command line (extra `magiclink[cli]`).

The composition root for operators: it builds the engine, the unit of work and the services
from `--database-url` (else `MAGICLINK_DATABASE_URL`, else `sqlite:///magiclink.db`).

Exit codes: 0 success; 1 when the domain refuses (refused token, blocked guest, unknown
booking) or the database cannot be used; 2 on usage errors (click's own, out-of-range values,
settings the library refuses). Every error is one `error: ...` line on stderr, or with `--json`
one JSON object `{"error": ..., "exit_code": N}` on stderr; never a traceback.
"""

try:
    import click  # noqa: F401
    import rich  # noqa: F401
except ImportError as missing:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"The magiclink command line needs its extra: pip install 'magiclink[cli]' ({missing})"
    ) from missing

from magiclink.cli._commands import main
from magiclink.cli._demo import run_demo
from magiclink.cli._outbox import outbox
from magiclink.cli._runtime import CliFailure, Runtime, parse_duration, raw_token_of

main.add_command(outbox)

__all__ = ["CliFailure", "Runtime", "main", "parse_duration", "raw_token_of", "run_demo"]
