"""The ``--out`` folder of a run: checked before anything is made, written aside, swapped in at the end.

Rules (a command never deletes what a person made, and never deletes before what replaces it succeeded):

- :func:`check` runs before the run creates anything: ``--out`` must be a folder or creatable as one (no
  path component that is a file, a writable parent); an existing folder may hold only files a previous run
  wrote, as listed in its manifest (:data:`MANIFEST`), else the run is refused and the first strangers named.
- The run writes into a staging folder beside ``--out`` (:func:`staging`); only when it finished does
  :func:`commit` delete the previous run's files (exactly those in the old manifest) and move the new ones in,
  then write the new manifest. A failed run removes its staging folder and leaves ``--out`` as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

__all__ = ["MANIFEST", "OutFolderError", "check", "commit", "discard", "staging"]

#: The manifest of the files a run wrote (JSON); also marks the folder as the tool's.
MANIFEST = ".sales-pipeline-lake"
#: What a pre-manifest version of the tool wrote (its marker was plain text): top-level names and folders.
_LEGACY_TOP_LEVEL = {"sales_history", "errors", "outputs.json"}
_NAMED_AT_MOST = 3
_created_parents: dict[Path, list[Path]] = {}


class OutFolderError(ValueError):
    """``--out`` cannot be used; the message says why in one line."""


def check(out: Path) -> None:
    """Refuse an ``--out`` that cannot be written or holds files the tool did not write. Creates nothing."""
    target = out.expanduser().absolute()
    for ancestor in [target, *target.parents]:
        if ancestor.exists() and not ancestor.is_dir():
            where = "" if ancestor == target else f" ({ancestor} is a file)"
            raise OutFolderError(f"--out {out} is not a folder{where}")
        if ancestor.exists():
            if not os.access(ancestor, os.W_OK | os.X_OK):
                raise OutFolderError(f"--out {out}: {ancestor} is not writable")
            break
    if target.is_dir():
        strangers = _strangers(target)
        if strangers:
            named = ", ".join(strangers[:_NAMED_AT_MOST]) + (" ..." if len(strangers) > _NAMED_AT_MOST else "")
            raise OutFolderError(
                f"--out {out} holds {len(strangers)} file(s) sales-pipeline did not write ({named}); "
                "move them or choose another folder"
            )


def staging(out: Path) -> Path:
    """A new empty folder beside ``out`` where the run writes; :func:`commit` moves it in."""
    target = out.expanduser().absolute()
    missing = [p for p in [target.parent, *target.parent.parents] if not p.exists()]
    target.parent.mkdir(parents=True, exist_ok=True)
    _created_parents[target.parent] = missing  # removed again by discard() if the run fails
    folder = target.parent / f".{target.name}.partial-{os.getpid()}"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    return folder


def commit(staged: Path, out: Path) -> Path:
    """Replace the previous run's files in ``out`` with the staged ones; return ``out``'s absolute path."""
    target = out.expanduser().absolute()
    written = sorted(_files(staged))
    if target.is_dir():
        check(out)  # nothing foreign arrived while the run was going
        emptied: set[Path] = set()
        for relative in _manifest(target) or []:
            path = target / relative
            if path.is_file():
                path.unlink()
                emptied.update(p for p in path.parents if p.is_relative_to(target) and p != target)
        _prune_empty(emptied)
        for relative in written:
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            (staged / relative).replace(destination)
        shutil.rmtree(staged)
    else:
        staged.replace(target)
    (target / MANIFEST).write_text(json.dumps({"written_by": "sales-pipeline run", "files": written}, indent=1) + "\n")
    return target


def discard(staged: Path) -> None:
    """Remove a staging folder after a failed run, and the parent folders :func:`staging` had to create."""
    shutil.rmtree(staged, ignore_errors=True)
    for folder in _created_parents.pop(staged.parent, []):  # deepest first
        with contextlib.suppress(OSError):
            folder.rmdir()  # only if empty: never anything that holds something


def _files(root: Path) -> Iterator[str]:
    for path in root.rglob("*"):
        if path.is_file() and path.name != MANIFEST:
            yield path.relative_to(root).as_posix()


def _manifest(folder: Path) -> set[str] | None:
    """The files the last run wrote, or None when the folder has no readable manifest."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    return {str(f) for f in files} if isinstance(files, list) else None


def _strangers(folder: Path) -> list[str]:
    present = sorted(_files(folder))
    if not present:
        return []
    if not (folder / MANIFEST).exists():
        return present
    known = _manifest(folder)
    if known is None:  # an older version's plain-text marker: its layout is all it could have written
        return [f for f in present if f.split("/", 1)[0] not in _LEGACY_TOP_LEVEL]
    return [f for f in present if f not in known]


def _prune_empty(folders: set[Path]) -> None:
    """Remove the folders the old files left empty (deepest first); never a folder that still holds anything."""
    for path in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
