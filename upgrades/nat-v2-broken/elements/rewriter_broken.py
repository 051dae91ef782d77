"""An IPRewriter that refuses to start: fault injection for rollback tests.

RFC 7654 section 6 asks for the impact of an upgrade that fails in its run
phase.  This package's IPRewriter is the library's in every respect but one:
``initialize()`` raises, which is the first thing the new version does when it
takes over (in place, at the swap; after a restart, as the new process starts).
The upgrade manager must then put the old version back; the ISSU benchmark
measures what that costs.  Its state version is the library's, so the state
hand-over itself succeeds and only the start fails.
"""

from nf.elements.rewriter import IPRewriter as _LibraryIPRewriter

__all__ = ["IPRewriter", "FAULT"]

FAULT = "fault injected: upgrades/nat-v2-broken's IPRewriter refuses to start"


class IPRewriter(_LibraryIPRewriter):
    """IPRewriter(INPUTSPEC1, ..., INPUTSPECn [, KEYWORDS])

    The library's IPRewriter with a deliberate fault: initialize() raises, so an
    upgrade to it fails in its run phase and is rolled back.  For tests only.

    Keywords: as the library's IPRewriter.

    Handlers: as the library's IPRewriter.
    """

    CODE_VERSION = 99

    def initialize(self):
        raise RuntimeError(FAULT)
