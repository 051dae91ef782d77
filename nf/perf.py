"""Small tools for code that walks or builds big tables."""

import contextlib
import gc

__all__ = ["gc_paused"]


@contextlib.contextmanager
def gc_paused():
    """Pause the cyclic garbage collector: building or walking a big table (10,000
    NAT mappings) allocates a container per entry, and every collection meanwhile
    would traverse the whole table again -- about half the time with it paused."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
