"""The actors and parties files: checked by pydantic once per content, read without it after.

A step reads both files every time; `load_checked` (definition/files.py) keeps a pass for
content that validated, so `pathways advance` starts without importing pydantic.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pathways_engine.errors import DefinitionError
from pathways_notifications import parties
from pathways_notifications import parties_file
from support import DEFINITIONS
from support import ROOT

from pathways import actors
from pathways import actors_file

PAIRS = [(actors.Actor, actors_file.Actor), (parties.Party, parties_file.Party)]


@pytest.mark.parametrize(("kept", "model"), PAIRS, ids=lambda c: c.__module__)
def test_what_the_cli_keeps_declares_what_the_format_checks(kept: Any, model: Any) -> None:
    fields = {f.name: f for f in dataclasses.fields(kept)}
    assert set(fields) == set(model.model_fields)
    for name, info in model.model_fields.items():
        field = fields[name]
        required = field.default is dataclasses.MISSING and \
            field.default_factory is dataclasses.MISSING
        assert required == info.is_required(), name
        if not required:
            default = field.default_factory() if field.default is dataclasses.MISSING \
                else field.default
            assert default == info.get_default(call_default_factory=True, validated_data={})


ACTORS_TEXT = """\
actors:
  - {id: ppr.anne, name: Anne Holm, roles: [ppr]}
  - id: dr.jensen
    name: Jens Jensen
    organisation: gp_jensen
    roles: [gp]
    areas: [norddjurs]
    may: [correct, undo]
"""


def test_a_file_read_under_a_kept_pass_gives_what_validation_gives(tmp_path: Path) -> None:
    path = tmp_path / "actors.yaml"
    path.write_text(ACTORS_TEXT, encoding="utf-8")
    first = actors.load_actors(path)  # validated, pass kept
    again = actors.load_actors(path)  # under the pass
    assert first == again
    validated = actors_file.ActorsFile.model_validate(yaml.safe_load(ACTORS_TEXT))
    assert [dataclasses.asdict(a) for a in again.by_id.values()] == \
        [a.model_dump() for a in validated.actors]
    shipped = DEFINITIONS / "parties.yaml"
    assert parties.load_parties(shipped) == parties.load_parties(shipped)


def test_changed_content_is_validated_again_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "actors.yaml"
    path.write_text(ACTORS_TEXT, encoding="utf-8")
    actors.load_actors(path)
    path.write_text(ACTORS_TEXT.replace("roles: [ppr]", "roles: []"), encoding="utf-8")
    with pytest.raises(DefinitionError) as caught:
        actors.load_actors(path)
    assert str(caught.value) == (f"{path}:2: actors.0.roles: List should have at least 1 item "
                                 "after validation, not 0")


def _load_in_a_child(path: Path, cache: Path) -> list[Any]:
    """Load the actors file in a fresh interpreter: [actor ids, whether pydantic was imported]."""
    code = ("import json, sys, pathlib\n"
            "from pathways.actors import load_actors\n"
            "loaded = load_actors(pathlib.Path(sys.argv[1]))\n"
            "print(json.dumps([sorted(loaded.by_id), 'pydantic' in sys.modules]))\n")
    env = {**os.environ, "PATHWAYS_CACHE_DIR": str(cache)}
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                         env=env, check=True, cwd=ROOT).stdout
    return list(json.loads(out))


def test_only_the_first_read_of_a_content_imports_pydantic(tmp_path: Path) -> None:
    path = tmp_path / "actors.yaml"
    path.write_text(ACTORS_TEXT, encoding="utf-8")
    cache = tmp_path / "cache"
    ids = ["dr.jensen", "ppr.anne"]
    assert _load_in_a_child(path, cache) == [ids, True]
    assert _load_in_a_child(path, cache) == [ids, False]
    path.write_text(ACTORS_TEXT + "  - {id: x, name: X, roles: [gp]}\n", encoding="utf-8")
    assert _load_in_a_child(path, cache) == [[*ids, "x"], True]  # new content: checked


def test_a_pass_in_a_folder_others_may_write_is_not_trusted(tmp_path: Path) -> None:
    path = tmp_path / "actors.yaml"
    path.write_text(ACTORS_TEXT, encoding="utf-8")
    cache = tmp_path / "cache"
    assert _load_in_a_child(path, cache)[1] is True
    cache.chmod(0o777)
    assert _load_in_a_child(path, cache)[1] is True  # validated again
    cache.chmod(0o700)
    for kept in cache.iterdir():
        kept.chmod(0o666)
    assert _load_in_a_child(path, cache)[1] is True


def test_pathways_advance_imports_no_pydantic_once_its_files_passed(tmp_path: Path) -> None:
    """The start-up of a step (bench/cli.py): neither the definition (parts.py) nor the
    actors and parties files need pydantic once they have been checked."""
    from pathways_engine import Database
    from pathways_engine import PathwayEngine
    from pathways_engine import Registry

    url = f"sqlite:///{tmp_path / 'p.db'}"
    engine = PathwayEngine(Database(url), Registry.from_paths([DEFINITIONS]))
    ids = [engine.start("mistrivsel_referral", subject_ref=f"C-{i}",
                        birth_date=dt.date(2014, 1, 1), actor="dr.jensen", role="gp",
                        values={"severity": "moderate", "consent_exchange": True})
           for i in range(2)]
    engine.db.dispose()
    code = ("import sys\n"
            "from pathways.cli import main\n"
            "sys.argv = ['pathways', *sys.argv[1:]]\n"
            "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
            "print('pydantic' in sys.modules)\n")
    env = {**os.environ, "PATHWAYS_CACHE_DIR": str(tmp_path / "cache")}
    imported = []
    for instance in ids:
        out = subprocess.run([sys.executable, "-c", code, "--db", url, "--actors",
                              str(DEFINITIONS / "actors.yaml"), "advance", instance,
                              "triage_to_ppr", "--as", "ppr.anne", "--role", "ppr"],
                             capture_output=True, text=True, env=env, cwd=ROOT,
                             check=True).stdout
        assert "-> ppr_assessment" in out, out
        imported.append(out.strip().splitlines()[-1])
    assert imported == ["True", "False"]


def test_a_pass_stands_for_one_content_under_one_set_of_rules(tmp_path: Path) -> None:
    from pathways_engine.definition.files import _pass_name
    from pathways_engine.definition.yamlsafe import parse_text

    rule = tmp_path / "rules.py"
    rule.write_text("PATTERN = 'a'\n", encoding="utf-8")
    document = parse_text(ACTORS_TEXT, "actors.yaml")
    first = _pass_name(document, (str(rule),))
    assert first is not None
    assert first == _pass_name(document, (str(rule),))
    assert _pass_name(parse_text(ACTORS_TEXT + "# a comment\n", "x.yaml"), (str(rule),)) == first
    assert _pass_name(parse_text(ACTORS_TEXT.replace("Anne", "Ann"), "a.yaml"),
                      (str(rule),)) != first
    rule.write_text("PATTERN = 'b'\n", encoding="utf-8")
    assert _pass_name(document, (str(rule),)) != first
    assert _pass_name(document, (str(tmp_path / "missing.py"),)) is None  # no pass at all


def test_a_forged_pass_for_content_validation_refuses_still_gets_its_problem(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The folder is this user's to write: a pass made by hand for a bad file is no way past
    the check (and no traceback)."""
    from pathways_engine.definition.files import _pass_name
    from pathways_engine.definition.yamlsafe import parse_file

    path = tmp_path / "actors.yaml"
    path.write_text(ACTORS_TEXT.replace("roles: [ppr]}", "roles: [ppr], colour: red}"),
                    encoding="utf-8")
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    monkeypatch.setenv("PATHWAYS_CACHE_DIR", str(cache))
    forged = cache / str(_pass_name(parse_file(path), actors.RULES))
    forged.touch(mode=0o600)
    with pytest.raises(DefinitionError) as caught:
        actors.load_actors(path)
    assert str(caught.value).startswith(f"{path}:2: actors.0.colour"), str(caught.value)
