"""Versioned state on disk: the persistent store and the recovery bootstrap.

:mod:`.store` is the file format (an append-only journal with periodic
snapshots, and why it is not SQLite); :mod:`.sync` keeps a running router's
stateful elements in step with it and restores them in a new process.

    syncer = attach(router, "/var/lib/nat.store", interval=0.5)
    sync_now(router, snapshot=True)         # e.g. before an upgrade restarts
    report = recover(new_router, "/var/lib/nat.store")
    print(report.summary())
"""

from .store import Record, StoreContents, StoreError, StoreWriter, load
from .sync import (JournalMark, RecoveryReport, Syncer, attach, journal_mark, journal_since,
                   recover, replays_journal, snapshot_now, store_path, sync_now, syncer_of)

__all__ = ["Record", "StoreContents", "StoreError", "StoreWriter", "load", "RecoveryReport",
           "Syncer", "attach", "recover", "replays_journal", "snapshot_now", "store_path",
           "sync_now", "syncer_of", "journal_mark", "journal_since", "JournalMark"]
