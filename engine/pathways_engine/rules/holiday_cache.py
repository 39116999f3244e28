"""Public holidays kept between runs.

Why: the first `holidays.country_holidays()` of a process imports every one of the package's
~250 country modules (its registry imports `holidays.countries`), about 100 ms of a CLI
`advance` that needs one country's dates for one year. This keeps those dates in a small JSON
file, so the next command reads them instead.

Why the file can be trusted with legal deadlines:
- it holds dates, not code (JSON, never pickle);
- its name carries a digest of the installed `holidays` package's RECORD (pip's sha256 of each
  of its files), so an upgraded, downgraded or patched `holidays` reads a new file; a `holidays`
  without exactly one RECORD (a source checkout, a half-removed old version) is not cached;
- an entry is used only if every value is an ISO date in the year asked for;
- the folder must belong to this user and be writable by nobody else, as must the file.
Anything else and the dates are computed as if there were no cache, and the file rewritten.

The folder and its checks are cachedir.py's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
from functools import cache
from importlib.util import find_spec
from pathlib import Path

from pathways_engine.cachedir import folder
from pathways_engine.cachedir import private

FORMAT = 1
Key = tuple[str, int, tuple[str, ...]]


@cache
def fingerprint(package: str = "holidays") -> str | None:
    """Digest of the installed package's RECORD; None without exactly one (a source checkout,
    or a half-removed old version beside the new one: which is in use is then unclear)."""
    spec = find_spec(package)  # finds it without importing it
    if spec is None or spec.origin is None:
        return None
    records = list(Path(spec.origin).parent.parent.glob(f"{package}-*.dist-info/RECORD"))
    if len(records) != 1:
        return None
    try:
        return hashlib.sha256(records[0].read_bytes()).hexdigest()[:20]
    except OSError:
        return None


def _entry_name(key: Key) -> str:
    country, year, categories = key
    return f"{country}|{year}|{','.join(categories)}"


def _dates(value: object, year: int) -> frozenset[dt.date] | None:
    if not isinstance(value, list):
        return None
    try:
        dates = frozenset(dt.date.fromisoformat(item) for item in value)
    except (TypeError, ValueError):
        return None
    return dates if all(day.year == year for day in dates) else None


def _year_of(name: str) -> int:
    parts = name.split("|")
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else 0


class HolidayFile:
    """One JSON file of holiday dates for one installed `holidays`."""

    def __init__(self, where: Path, package_digest: str) -> None:
        self.where = where
        self.path = where / f"holidays-{package_digest}.json"
        self._known: dict[str, object] | None = None

    def _read(self) -> dict[str, object]:
        """The file's well-formed entries; nothing from a file that fails a check."""
        if not private(self.where, want_dir=True) or not private(self.path, want_dir=False):
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return {}
        entries = data.get("dates")
        if not isinstance(entries, dict):
            return {}
        return {name: value for name, value in entries.items()
                if _dates(value, _year_of(name)) is not None}

    def lookup(self, key: Key) -> frozenset[dt.date] | None:
        if self._known is None:
            self._known = self._read()
        return _dates(self._known.get(_entry_name(key)), key[1])

    def remember(self, key: Key, dates: frozenset[dt.date]) -> None:
        """Add one entry; a folder or file that cannot be written just means no cache."""
        entries = self._read()  # again: another process may have added entries meanwhile
        entries[_entry_name(key)] = sorted(day.isoformat() for day in dates)
        self._known = entries
        try:
            self.where.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not private(self.where, want_dir=True):
                return
            handle, temporary = tempfile.mkstemp(dir=self.where, prefix=".holidays-")
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as out:
                    json.dump({"format": FORMAT, "dates": entries}, out, sort_keys=True)
                os.replace(temporary, self.path)  # readers see the old file or the new one
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError:
            return


@cache
def holiday_file() -> HolidayFile | None:
    where, digest = folder(), fingerprint()
    return HolidayFile(where, digest) if where is not None and digest is not None else None
