"""The service's checkpoints, as a verification holds the chain to them: its folder's files,
the database's ledger, and those a caller adds.

The folder may be shared by several databases outside production (two test runs, a backup
restored beside): the files of another chain are left out and counted there. In production
one configured key signs one chain, so a file signed by it that names another chain is this
chain's past (a chain rebuilt from record 1 has a new name) and fails the verification.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from audit import AuditStore, Checkpoint
from audit.checkpoints import load_checkpoint_files, verify_checkpoint_signature

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from service.ops.settings import Settings

_NAMED = 5  # files of another chain a failure names; the rest are counted


@dataclass(frozen=True, slots=True)
class OtherChainFile:
    """A checkpoint file of the service's folder, signed by its key, of another chain (or of
    the old format, and not agreeing with this chain), and what it says."""

    file: Path
    checkpoint: Checkpoint
    description: str


def other_chain_message(found: Sequence[OtherChainFile]) -> str:
    """Say which files of another chain fail a production chain, and why that is a failure."""
    named = "; ".join(item.description for item in found[:_NAMED])
    more = f"; and {len(found) - _NAMED} more" if len(found) > _NAMED else ""
    return (f"{named}{more} — signed by the service's key, which in production signs this "
            "chain only: the chain was rebuilt from record 1, or the file does not belong in "
            "this deployment's folder")


def _describe(file: Path, checkpoint: Checkpoint, chain: str | None, last: int) -> str:
    if checkpoint.chain_id is not None:
        return (f"checkpoint file {file} names chain {checkpoint.chain_id} (seq "
                f"{checkpoint.seq}), not this chain, {chain or 'empty'}")
    if checkpoint.seq > last:
        return (f"checkpoint file {file} (old format, naming no chain) signs record "
                f"{checkpoint.seq}, which this chain, ending at record {last}, does not reach")
    return (f"checkpoint file {file} (old format, naming no chain) signs record "
            f"{checkpoint.seq} with {checkpoint.record_hash}, which this chain's record "
            f"{checkpoint.seq} does not have")


@dataclass(frozen=True, slots=True)
class ServiceCheckpoints:
    """The checkpoints to hold the chain to; how many files of another chain were left out;
    those that fail the chain instead (production); a warning for the verdict to carry."""

    held: list[Checkpoint]
    ignored: int = 0
    other_chain: tuple[OtherChainFile, ...] = ()
    warning: str | None = None


def service_public_key(settings: Settings, store: AuditStore) -> Ed25519PublicKey:
    """Return the public key that the service's checkpoints of ``store``'s chain carry (read
    only: a development key not yet recorded for the database is not recorded here)."""
    return store.signing_key(settings.signing_key, settings.var_dir,
                             production=settings.is_production, record=False).public_key()


def checkpoint_folder(settings: Settings) -> Path:
    """Return the folder where the service writes its checkpoints."""
    return settings.var_dir / "checkpoints"


def service_checkpoints(store: AuditStore, folder: Path | None,
                        extra: Iterable[Checkpoint] = (), *,
                        public_key: Ed25519PublicKey | str | None = None,
                        production: bool = False,
                        every_records: int | None = None) -> ServiceCheckpoints:
    """Return the checkpoints of ``extra``, the ledger and the service's folder, once each.

    ``extra`` and the ledger are held whichever chain they name: the caller vouches for the
    one, the database for the other. The folder's files of another chain are left out and
    counted — outside production, where two databases may share one var/ folder — except
    those signed with ``public_key`` in ``production``, where that key signs one chain only:
    those fail (a chain rebuilt from record 1 has a new name). Outside production, a chain
    that holds no checkpoint though it has more than ``every_records`` records, beside files
    of another chain signed with ``public_key``, gets a warning.
    """
    held = list(extra) + store.recorded_checkpoints()
    files: list[tuple[Path, Checkpoint]] = []
    if folder is not None and folder.is_dir():
        files = load_checkpoint_files([folder])
    found = store.sort_by_chain(checkpoint for _, checkpoint in files)
    held += found.ours
    unique = dict.fromkeys(held)
    # A file that is the ledger's own checkpoint is held with it, not counted apart.
    others = set(found.others) - unique.keys()
    signed = [(file, checkpoint) for file, checkpoint in files if checkpoint in others
              and public_key is not None and verify_checkpoint_signature(checkpoint, public_key)]
    head = store.head()
    last = 0 if head is None else head.seq
    failing: tuple[OtherChainFile, ...] = ()
    warning = None
    if production:
        failing = tuple(OtherChainFile(file, checkpoint,
                                       _describe(file, checkpoint, found.chain_id, last))
                        for file, checkpoint in signed)
    elif signed and not unique and every_records is not None and last > every_records:
        count = len({checkpoint for _, checkpoint in signed})
        warning = (f"this chain holds no checkpoint, yet {count} checkpoint file(s) signed by "
                   f"the service's key name another chain, and it has {last} records, more "
                   f"than one checkpoint's interval ({every_records}): unless another database "
                   "shares this var/ folder, the chain may have been rebuilt from record 1")
    ignored = len(others - {item.checkpoint for item in failing})
    return ServiceCheckpoints(sorted(unique, key=lambda checkpoint: checkpoint.seq), ignored,
                              failing, warning)


def service_checkpoints_of(settings: Settings, store: AuditStore,
                           public_key: Ed25519PublicKey | str,
                           extra: Iterable[Checkpoint] = ()) -> ServiceCheckpoints:
    """Return :func:`service_checkpoints` as the settings have it: the service's folder, held
    strictly in production, its checkpoint interval, under the key trusted."""
    return service_checkpoints(store, checkpoint_folder(settings), extra,
                               public_key=public_key, production=settings.is_production,
                               every_records=settings.checkpoint_every_records)
