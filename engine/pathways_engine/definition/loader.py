"""Definition files and folders -> validated `Definition`s, with a content hash and snapshot.

A pathway is either one YAML file or a folder holding `pathway.yaml`, `templates/` and
`scenarios/`. The snapshot (definition plus template texts) is what a running instance is
pinned to: it is stored with the instance, so editing or deleting the files later never
changes that instance.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from pathways_engine.errors import DefinitionError
from pathways_engine.errors import Problem

from .parts import PathwaySpec
from .rebuild import NotExact
from .rebuild import rebuild
from .yamlsafe import Document
from .yamlsafe import parse_file

DEFINITION_FILE = "pathway.yaml"
TEMPLATE_SUFFIXES = (".j2",)
MAX_TEMPLATE_BYTES = 200_000


@dataclass(frozen=True)
class Definition:
    """A parsed, schema-valid definition; graph checks are `validate.problems`."""

    spec: PathwaySpec
    path: str
    document: Document
    templates: dict[str, str] = field(default_factory=dict)
    content_hash: str = ""

    @property
    def key(self) -> tuple[str, int]:
        return (self.spec.id, self.spec.version)

    def line_of(self, *loc: str | int) -> int:
        return self.document.line_of(loc)

    def snapshot(self) -> str:
        return snapshot_json(self.document.data, self.templates, self.path)


def snapshot_json(data: Any, templates: dict[str, str], path: str) -> str:
    return json.dumps(
        {"format": 1, "path": path, "definition": data, "templates": templates},
        sort_keys=True, ensure_ascii=False, separators=(",", ":"),
    )


def same_content(one: str, other: str) -> bool:
    """Two snapshots of the same definition and templates, wherever each was loaded from."""
    first, second = json.loads(one), json.loads(other)
    return all(first.get(key) == second.get(key) for key in ("definition", "templates"))


def _hash(snapshot: str) -> str:
    return hashlib.sha256(snapshot.encode("utf-8")).hexdigest()


def from_document(document: Document, templates: dict[str, str] | None = None) -> Definition:
    """Validate a parsed document against the model; raise DefinitionError with every problem."""
    from pydantic import ValidationError  # here: a step from a snapshot never validates

    from .files import pydantic_problems
    from .spec import validating

    if not isinstance(document.data, dict):
        raise DefinitionError([Problem(document.path, 1, "a definition must be a YAML mapping")])
    try:
        validated = validating().model_validate(document.data)
    except ValidationError as exc:
        raise DefinitionError(pydantic_problems(exc, document)) from None
    spec = rebuild(PathwaySpec, validated.model_dump(by_alias=True))
    templates = templates or {}
    snap = snapshot_json(document.data, templates, document.path)
    return Definition(spec, document.path, document, templates, _hash(snap))


def from_snapshot(snapshot: str) -> Definition:
    """Rebuild the exact definition an instance was started on."""
    data = json.loads(snapshot)
    # The snapshot was validated when it was stored: rebuild the document from JSON (fast)
    # instead of re-reading it as YAML; only error lines are lost, and it has no errors.
    document = Document(path=data["path"], data=data["definition"])
    templates = dict(data.get("templates", {}))
    try:
        spec = rebuild(PathwaySpec, document.data)
    except NotExact:  # a value only validation converts (`version: "+3"`): validate it
        return from_document(document, templates)
    snap = snapshot_json(document.data, templates, document.path)  # as from_document hashes
    return Definition(spec, document.path, document, templates, _hash(snap))


def load_path(path: Path) -> Definition:
    """Load one definition file or folder."""
    if path.is_dir():
        main = path / DEFINITION_FILE
        if not main.is_file():
            raise DefinitionError([Problem(str(path), 1, f"folder has no {DEFINITION_FILE}")])
        document = parse_file(main)
        return from_document(document, _read_templates(path / "templates"))
    return from_document(parse_file(path))


SYMLINK = "templates must be regular files inside templates/, not a symbolic link"


def _read_templates(folder: Path) -> dict[str, str]:
    """Every template under `folder`; symbolic links anywhere in it are refused.

    A link could make a definition read any file the service can read into its snapshot
    and into messages, so only regular files that really sit inside the folder are taken.
    """
    templates: dict[str, str] = {}
    if folder.is_symlink():
        raise DefinitionError([Problem(str(folder), 1, SYMLINK)])
    if not folder.is_dir():
        return templates
    problems: list[Problem] = []
    root = folder.resolve()
    for current, dirs, files in os.walk(folder, followlinks=False):
        here = Path(current)
        for name in sorted(dirs + files):
            path = here / name
            if path.is_symlink():
                problems.append(Problem(str(path), 1, SYMLINK))
        for name in sorted(files):
            path = here / name
            if path.is_symlink() or path.suffix not in TEMPLATE_SUFFIXES:
                continue
            if not path.resolve().is_relative_to(root) or not path.is_file():
                problems.append(Problem(str(path), 1, SYMLINK))
                continue
            try:
                if path.stat().st_size > MAX_TEMPLATE_BYTES:
                    problems.append(Problem(str(path), 1, "template is larger than 200 kB"))
                    continue
                templates[path.relative_to(folder).as_posix()] = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                problems.append(Problem(str(path), 1, "template is not UTF-8"))
            except OSError as exc:
                problems.append(Problem(str(path), 1, f"cannot read template: {exc.strerror}"))
    if problems:
        raise DefinitionError(problems)
    return dict(sorted(templates.items()))


# Files beside the definitions that describe a deployment, not a pathway.
DEPLOYMENT_FILES = ("parties", "actors")


def discover(paths: Iterable[Path]) -> list[Path]:
    """Expand folders of definitions into the definition files/folders they hold."""
    found: list[Path] = []
    for path in paths:
        if not path.exists():
            raise DefinitionError([Problem(str(path), 1, "no such file or folder")])
        if not path.is_file() and not path.is_dir():
            raise DefinitionError([Problem(str(path), 1, "not a definition file or folder "
                                           "(a regular .yaml file or a folder of them)")])
        if path.is_file() or (path / DEFINITION_FILE).is_file():
            found.append(path)
            continue
        before = len(found)
        for child in sorted(path.iterdir()):
            if child.is_dir() and (child / DEFINITION_FILE).is_file():
                found.append(child)
            elif (child.is_file() and child.suffix in {".yaml", ".yml"}
                  and not child.name.startswith(DEPLOYMENT_FILES)):
                found.append(child)
        if len(found) == before:
            raise DefinitionError([Problem(str(path), 1, f"no definitions here: a pathway is a "
                                           f"folder with {DEFINITION_FILE} or a .yaml file")])
    return found
