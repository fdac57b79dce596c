"""`reelay`: the command line of Reelay's clients and operators (see `reelay.cli.commands`)."""

from reelay.cli.commands import app

__all__ = ["app"]
