"""What an issue write needs to run as ONE composed command instead of a WATCH/MULTI transaction:
the composing scripts' names and parts, and the reads a fenced write is expected to make.

``Issues.create_one`` runs a new issue's transaction as ``issue_new.lua``; ``Issues.update_one``
runs a fenced update as ``issue_update.lua`` from a read predicted by a claim of this process
(:class:`Expected`), which the script checks by its digest (:func:`read_digest`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from loop.tunables import EXPECTED_READS

#: A new issue's whole transaction in one command (``loop/lua/issue_new.lua``), and the scripts it
#: composes: a create whose transaction is made of these alone runs as it.
NEW_SCRIPT = "issue_new"
NEW_PARTS = ("issue_create", "signal_stage", "dispatch_enter", "stats_count")
#: An update's whole transaction in one command (``loop/lua/issue_update.lua``): its writes are
#: ``steps.lua``'s (loop.scripts.STEP_PARTS, STEP_COMMANDS).
UPDATE_SCRIPT = "issue_update"
#: The issue, the session its dispatch state names and the session a claim token names, read at once.
FENCED_READ = "issue_fenced_read"

#: ``issue_fenced_read.lua``'s answer with its digest: the issue's and a session's field/value lists,
#: the session the issue's dispatch state names, the digest of what was read, the issues it blocks
#: (``None``: not read).
Read = tuple[list[str], str | None, list[str], str, list[str] | None]


class Unexpected(Exception):
    """A key :meth:`Issues.create_one` checked held another value (``value``; ``None``: unset):
    nothing was written. ``index``: which of its ``expect`` pairs."""

    def __init__(self, index: int, value: str | None) -> None:
        super().__init__(index, value)
        self.index = index
        self.value = value


def read_digest(issue: Sequence[str], named: str | None, held: Sequence[str],
                blocking: Sequence[str] | None = None) -> str:
    """``issue_fenced_read.lua``'s digest of a read (flat field/value lists, in HGETALL's order;
    ``blocking``: the HKEYS of the issue's blocking map, if read): the SHA-1 of the same MessagePack
    bytes its ``cmsgpack.pack`` gives (arrays of strings; an unset session is Lua's ``false``)."""
    packed = [_packed(issue), _FALSE if named is None else _packed_str(named.encode()), _packed(held)]
    if blocking is not None:
        packed.append(_packed(blocking))
    return hashlib.sha1(b"".join(packed)).hexdigest()


#: MessagePack as Redis's cmsgpack writes it: fixstr (< 32 bytes) headers, and ``false``.
_FIXSTR = tuple(bytes((0xA0 | n,)) for n in range(32))
_FALSE = b"\xc2"


def _packed(flat: Sequence[str]) -> bytes:
    """A MessagePack array of strings, byte for byte as ``cmsgpack.pack`` of the Lua table."""
    n = len(flat)
    head = bytes((0x90 | n,)) if n < 16 else b"\xdc" + n.to_bytes(2, "big") if n < 0x10000 else b"\xdd" + n.to_bytes(4, "big")
    return head + b"".join([_packed_str(v.encode()) for v in flat])


def _packed_str(data: bytes) -> bytes:
    n = len(data)
    if n < 32:
        return _FIXSTR[n] + data
    if n < 0x100:
        return b"\xd9" + bytes((n,)) + data
    return (b"\xda" + n.to_bytes(2, "big") if n < 0x10000 else b"\xdb" + n.to_bytes(4, "big")) + data


class Expected:
    """Per process: issue id -> the read a fenced write of it is expected to make, newest last.

    A claim of this process knows what it left in the issue's hash and in its new session's (the
    dispatch state names that session), so the claim's re-open or completion can be staged without
    reading first. Only a prediction: ``issue_update.lua`` writes only if it is still what Redis
    holds, else it answers what is there. Kept for the last EXPECTED_READS claims; used once.
    """

    def __init__(self) -> None:
        self._reads: dict[str, tuple[list[str], str, list[str]]] = {}

    def put(self, issue_id: str, issue: Sequence[str], session: str, held: Sequence[str]) -> None:
        """Expect ``issue`` and the ``session`` that it holds, ``held`` (flat field/value lists)."""
        reads = self._reads
        reads[issue_id] = (list(issue), session, list(held))
        while len(reads) > EXPECTED_READS:
            try:
                del reads[next(iter(reads))]
            except (KeyError, StopIteration, RuntimeError):  # another thread took it meanwhile
                break

    def take(self, issue_id: str, session: str | None, blocking: bool = False) -> Read | None:
        """The read expected for a write of ``issue_id`` fenced by ``session``, with its digest (computed
        here, by the write: a claim that is never written back costs nothing); forgotten either way.
        ``blocking``: the write reads the issues it blocks too, expected to be none (most block none;
        if some, the script answers them)."""
        read = self._reads.pop(issue_id, None)
        if read is None or session is None or read[1] != session:
            return None
        issue, named, held = read
        blocks: list[str] | None = [] if blocking else None
        return issue, named, held, read_digest(issue, named, held, blocks), blocks

    def __len__(self) -> int:
        return len(self._reads)

    def __contains__(self, issue_id: object) -> bool:
        return issue_id in self._reads
