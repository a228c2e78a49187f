"""Process trees from ``/proc`` (Linux), for tests that start servers and check what they left."""

from __future__ import annotations

from pathlib import Path


def children_by_parent() -> dict[int, list[int]]:
    """Every live process, grouped by its parent's pid."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(text[text.rfind(")") + 2:].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    return children


def descendants(root: int) -> set[int]:
    """Every process below ``root``."""
    children = children_by_parent()
    found: set[int] = set()
    todo = [root]
    while todo:
        for pid in children.get(todo.pop(), []):
            found.add(pid)
            todo.append(pid)
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
