"""Suite-wide configuration: the hypothesis profile and the raw-token leak scan."""

from __future__ import annotations

import logging
import os
import secrets

import pytest
from hypothesis import HealthCheck, settings

from tests.leakscan import LeakScanner

# Deadlines flake on shared 2-core machines; example counts are set per test (>= 100 for
# the SPEC §6 properties). `derandomize` keeps CI runs reproducible.
settings.register_profile(
    "magiclink",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=os.environ.get("CI") == "true",
    print_blob=True,
)
settings.load_profile("magiclink")

LEAK_SCANNER = LeakScanner()


def pytest_configure(config: pytest.Config) -> None:
    """Remember every raw token the services issue; watch every `magiclink` log record."""
    # The library draws raw tokens from `secrets.token_hex` (SPEC §2), looked up at each
    # call: wrapping it there reaches every token without patching a private module.
    name = "token_hex"
    setattr(secrets, name, LEAK_SCANNER.remember(getattr(secrets, name)))
    library_logger = logging.getLogger("magiclink")
    library_logger.addHandler(LEAK_SCANNER)
    library_logger.setLevel(logging.DEBUG)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if any log record of the whole suite carried a raw token."""
    if LEAK_SCANNER.leaks:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = ["RAW TOKEN LEAK in log records:", *LEAK_SCANNER.leaks[:20]]
        if reporter is not None:
            reporter.write_line("\n".join(lines), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
