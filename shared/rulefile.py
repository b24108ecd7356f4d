"""Rule files (TOML arrays of tables such as `[[rule]]`): parse once, and name the line of any error.

Used by the routing rules (infra/routing/rules.toml) and the legal channels (infra/legal/channels.toml),
so both stop start-up with the same kind of message: `<file> line 7 (rule 'b'): unknown agency type 'x'`."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable


@dataclass(frozen=True)
class Entry:
    """One `[[table]]` entry with its location, for error messages."""
    where: str
    data: dict[str, Any]

    def check_keys(self, required: Iterable[str], optional: Iterable[str], error: type[Exception]) -> None:
        """Missing required keys, then unknown keys, each named."""
        required = set(required)
        missing = required - self.data.keys()
        if missing:
            raise error(f"{self.where}: missing {', '.join(sorted(missing))}")
        unknown = self.data.keys() - required - set(optional)
        if unknown:
            raise error(f"{self.where}: unknown key(s) {', '.join(sorted(unknown))}")


def parse(path: Path, error: type[Exception]) -> tuple[str, dict[str, Any]]:
    """The file's text and its TOML document; a syntax error raises `error` naming the file (and line)."""
    text = path.read_text(encoding="utf-8")
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise error(f"{path}: {e}") from None


def entries(path: Path, text: str, doc: dict[str, Any], table: str, error: type[Exception]) -> list[Entry]:
    """The `[[table]]` entries of a parsed file, each labelled `<path> line N (<table> '<id>')`."""
    header_lines = [i + 1 for i, line in enumerate(text.splitlines()) if line.strip() == f"[[{table}]]"]
    raw = doc.get(table, [])
    if not isinstance(raw, list):
        raise error(f"{path}: [{table}] must be an array of tables ([[{table}]])")
    out = []
    for i, data in enumerate(raw):
        line = header_lines[i] if i < len(header_lines) else "?"
        out.append(Entry(f"{path} line {line} ({table} {data.get('id', i + 1)!r})", data))
    return out
