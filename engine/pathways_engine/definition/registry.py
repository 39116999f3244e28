"""The definitions a deployment offers now, loaded from files; new instances start on these."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

from pathways_engine.errors import DefinitionError
from pathways_engine.errors import Problem
from pathways_engine.errors import UnknownPathway

from .compiler import CompiledPathway
from .compiler import check
from .compiler import compile_definition
from .links import link_problems
from .loader import Definition
from .loader import discover
from .loader import load_path


def load_all(paths: Iterable[Path], context: Iterable[Path] = ()
             ) -> tuple[list[Definition], list[Problem]]:
    """Load every definition under `paths`, collecting all problems instead of stopping;
    handovers may also name pathways under `context` (the deployment's definitions, when
    `check` is given one file)."""
    definitions: list[Definition] = []
    found: list[Problem] = []
    try:
        targets = discover(paths)
    except DefinitionError as exc:
        return [], exc.problems
    for target in targets:
        try:
            definition = load_path(target)
        except DefinitionError as exc:
            found.extend(exc.problems)
            continue
        problems = check(definition)
        found.extend(problems)
        if not any(not p.warning for p in problems):  # warnings do not keep it out
            definitions.append(definition)
    seen: dict[tuple[str, int], Definition] = {}
    for definition in definitions:
        if definition.key in seen:
            found.append(Problem(definition.path, definition.line_of("version"),
                                 f"pathway {definition.spec.id!r} version "
                                 f"{definition.spec.version} is also defined in "
                                 f"{seen[definition.key].path}"))
        seen[definition.key] = definition
    known: list[Definition] = []
    context = list(context)
    if context:
        mine = {d.path for d in definitions}
        known = [d for d in load_all(context)[0] if d.path not in mine]
    found.extend(link_problems(definitions, known))
    return definitions, found


class Registry:
    """Definitions by (id, version); the newest version of a pathway starts new instances."""

    def __init__(self, definitions: Iterable[Definition] | None = None,
                 paths: Iterable[Path] | None = None) -> None:
        self._paths = list(paths or [])
        self._loading = threading.Lock()
        self._loaded: dict[tuple[str, int], Definition] | None = (
            {d.key: d for d in definitions} if definitions is not None else None)

    @classmethod
    def from_paths(cls, paths: Iterable[Path]) -> Registry:
        registry = cls(paths=paths)
        registry._by_key  # noqa: B018 - load now and report problems now
        return registry

    @classmethod
    def lazy(cls, paths: Iterable[Path]) -> Registry:
        """Loads the files only when a command needs them: advancing a pinned instance never
        does, so a broken or deleted definition file cannot block running pathways."""
        return cls(paths=paths)

    @property
    def _by_key(self) -> dict[tuple[str, int], Definition]:
        if self._loaded is None:
            with self._loading:  # a server's first requests arrive together: load once
                if self._loaded is None:
                    definitions, problems = load_all(self._paths)
                    errors = [p for p in problems if not p.warning]
                    if errors:
                        raise DefinitionError(errors)
                    self._loaded = {d.key: d for d in definitions}
        return self._loaded

    def ids(self) -> list[str]:
        return sorted({key[0] for key in self._by_key})

    def all(self) -> list[Definition]:
        return [self._by_key[k] for k in sorted(self._by_key)]

    def get(self, pathway: str, version: int | None = None) -> Definition:
        versions = sorted(v for (pid, v) in self._by_key if pid == pathway)
        if not versions:
            raise UnknownPathway(pathway, self.ids())
        if version is None:
            return self._by_key[(pathway, versions[-1])]
        if version not in versions:
            raise UnknownPathway(pathway, self.ids(), version)
        return self._by_key[(pathway, version)]

    def compiled(self, pathway: str, version: int | None = None) -> CompiledPathway:
        return compile_definition(self.get(pathway, version))
