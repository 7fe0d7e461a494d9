"""`python -m magiclink.cli`: the operator command line."""

from magiclink.cli._commands import main

__all__ = ["main"]

if __name__ == "__main__":  # pragma: no cover
    main()
