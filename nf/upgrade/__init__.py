"""Upgrading a running NF.

Strategies are registered by name with :func:`strategy` (like Ryu apps'
decorators) and chosen per upgrade.  :class:`~nf.upgrade.manager.UpgradeManager`
serves the router's ``upgrade`` handlers and runs one upgrade at a time:
staging off the packet loop, the run phase between two batches, probation and
housekeeping, and rollback when the new version fails.  See ../shared/DESIGN.md
§2 for what each strategy models.
"""

STRATEGIES = {}


def strategy(name):
    """Register a Strategy subclass under ``name``."""
    def deco(cls):
        cls.name = name
        STRATEGIES[name] = cls
        return cls
    return deco


def strategies():
    from . import inplace, restart  # noqa: F401  (register the built-in strategies)
    return dict(STRATEGIES)
