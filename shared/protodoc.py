"""docs/GRPC.md from the comments in proto/lianfang/v1/*.proto (`python -m shared.protodoc`, `make docs`).

The .proto files are the source of truth: protoc (grpc_tools) compiles them with `--include_source_info`
into a FileDescriptorSet, and this module renders every service, rpc, message, field and enum of it with
its leading (and trailing) comment. `--check` exits 1 when the committed file differs from what would be
written; tests/unit/test_protodoc.py asserts the same, and that nothing in proto/ lacks a comment.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
PROTO_DIR = PROTO_ROOT / "lianfang" / "v1"
OUT = ROOT / "docs" / "GRPC.md"

# Field numbers in descriptor.proto, for SourceCodeInfo.Location.path.
_F_MESSAGE, _F_ENUM, _F_SERVICE, _F_SYNTAX = 4, 5, 6, 12      # FileDescriptorProto
_M_FIELD, _M_NESTED, _M_ENUM = 2, 3, 4                         # DescriptorProto
_E_VALUE = 2                                                   # EnumDescriptorProto
_S_METHOD = 2                                                  # ServiceDescriptorProto

_T = descriptor_pb2.FieldDescriptorProto
_SCALARS = {_T.TYPE_DOUBLE: "double", _T.TYPE_FLOAT: "float", _T.TYPE_INT64: "int64", _T.TYPE_UINT64: "uint64",
            _T.TYPE_INT32: "int32", _T.TYPE_FIXED64: "fixed64", _T.TYPE_FIXED32: "fixed32", _T.TYPE_BOOL: "bool",
            _T.TYPE_STRING: "string", _T.TYPE_BYTES: "bytes", _T.TYPE_UINT32: "uint32", _T.TYPE_SFIXED32: "sfixed32",
            _T.TYPE_SFIXED64: "sfixed64", _T.TYPE_SINT32: "sint32", _T.TYPE_SINT64: "sint64"}


def proto_files() -> list[Path]:
    return sorted(PROTO_DIR.glob("*.proto"))


def descriptor_set(files: list[Path] | None = None) -> descriptor_pb2.FileDescriptorSet:
    """Compile the .proto files with source info (comments) into a FileDescriptorSet."""
    from grpc_tools import protoc

    files = proto_files() if files is None else files
    include = str(resources.files("grpc_tools") / "_proto")  # google/protobuf/*.proto, should a file import one
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.pb"
        args = ["protoc", f"-I{PROTO_ROOT}", f"-I{include}", "--include_source_info",
                f"--descriptor_set_out={out}", *(str(f) for f in files)]
        if protoc.main(args) != 0:
            raise RuntimeError("protoc failed on " + " ".join(str(f) for f in files))
        return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def _clean(comment: str) -> str:
    """A protoc comment ("// a\\n// b" arrives as " a\\n b\\n") as plain text, paragraphs kept."""
    lines = [ln[1:] if ln.startswith(" ") else ln for ln in comment.rstrip().split("\n")]
    return "\n".join(ln.rstrip() for ln in lines).strip("\n")


@dataclass
class Comments:
    """The comments of one file, by location path."""
    by_path: dict[tuple[int, ...], descriptor_pb2.SourceCodeInfo.Location]

    @classmethod
    def of(cls, f: descriptor_pb2.FileDescriptorProto) -> "Comments":
        return cls({tuple(loc.path): loc for loc in f.source_code_info.location})

    def leading(self, path: tuple[int, ...]) -> str:
        loc = self.by_path.get(path)
        return _clean(loc.leading_comments) if loc and loc.leading_comments else ""

    def trailing(self, path: tuple[int, ...]) -> str:
        loc = self.by_path.get(path)
        return _clean(loc.trailing_comments) if loc and loc.trailing_comments else ""

    def text(self, path: tuple[int, ...]) -> str:
        """Leading and trailing comment together (fields and enum values use either)."""
        return "\n".join(c for c in (self.leading(path), self.trailing(path)) if c)

    def file_comment(self) -> str:
        """The comment block at the top of the file, which protoc attaches to the `syntax` statement."""
        loc = self.by_path.get((_F_SYNTAX,))
        if loc is None:
            return ""
        parts = [*loc.leading_detached_comments, loc.leading_comments]
        return "\n\n".join(_clean(p) for p in parts if p.strip())


@dataclass
class Item:
    """One documented element, for the completeness check: kind, full name, comment."""
    kind: str  # service | rpc | message | enum | field | value
    name: str
    comment: str


def _short(type_name: str, package: str) -> str:
    name = type_name.lstrip(".")
    return name[len(package) + 1:] if package and name.startswith(package + ".") else name


def _walk_message(m: descriptor_pb2.DescriptorProto, path: tuple[int, ...], prefix: str, c: Comments,
                  out: list[tuple[str, object, tuple[int, ...]]]) -> None:
    name = f"{prefix}{m.name}"
    out.append((name, m, path))
    for i, e in enumerate(m.enum_type):
        out.append((f"{name}.{e.name}", e, path + (_M_ENUM, i)))
    for i, n in enumerate(m.nested_type):
        if not n.options.map_entry:
            _walk_message(n, path + (_M_NESTED, i), f"{name}.", c, out)


def _types(f: descriptor_pb2.FileDescriptorProto, c: Comments) -> list[tuple[str, object, tuple[int, ...]]]:
    """Every message and enum of a file with its dotted name (relative to the package) and location path,
    in declaration order; a message's nested enums and messages follow it."""
    out: list[tuple[str, object, tuple[int, ...]]] = []
    for i, m in enumerate(f.message_type):
        _walk_message(m, (_F_MESSAGE, i), "", c, out)
    for i, e in enumerate(f.enum_type):
        out.append((e.name, e, (_F_ENUM, i)))
    return out


def items(fds: descriptor_pb2.FileDescriptorSet | None = None) -> list[Item]:
    """Every service, rpc, message, enum, field and enum value with its comment."""
    fds = descriptor_set() if fds is None else fds
    found: list[Item] = []
    for f in fds.file:
        c, pkg = Comments.of(f), f.package
        for si, s in enumerate(f.service):
            found.append(Item("service", f"{pkg}.{s.name}", c.leading((_F_SERVICE, si))))
            for mi, m in enumerate(s.method):
                found.append(Item("rpc", f"{pkg}.{s.name}.{m.name}", c.leading((_F_SERVICE, si, _S_METHOD, mi))))
        for name, d, path in _types(f, c):
            if isinstance(d, descriptor_pb2.DescriptorProto):
                found.append(Item("message", f"{pkg}.{name}", c.leading(path)))
                for fi, fld in enumerate(d.field):
                    found.append(Item("field", f"{pkg}.{name}.{fld.name}", c.text(path + (_M_FIELD, fi))))
            else:
                found.append(Item("enum", f"{pkg}.{name}", c.leading(path)))
                for vi, v in enumerate(d.value):
                    found.append(Item("value", f"{pkg}.{name}.{v.name}", c.text(path + (_E_VALUE, vi))))
    return found


# --- Markdown -----------------------------------------------------------------------------------------

def _anchor(name: str) -> str:
    return name.replace(".", "-").lower()


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") if text else ""


def _type_ref(t: str, known: set[str]) -> str:
    return f"[`{t}`](#{_anchor(t)})" if t in known else f"`{t}`"


def _field_type(fld: descriptor_pb2.FieldDescriptorProto, pkg: str, known: set[str]) -> str:
    base = _SCALARS.get(fld.type)
    ref = f"`{base}`" if base else _type_ref(_short(fld.type_name, pkg), known)
    return f"repeated {ref}" if fld.label == _T.LABEL_REPEATED else ref


def _block(text: str) -> list[str]:
    """A comment as Markdown, followed by a blank line (nothing when there is no comment). A bullet list
    (`*` or `-` items, indented continuation lines) gets blank lines around it, so it renders as a list."""
    if not text:
        return []
    out: list[str] = []
    in_list = False
    for ln in text.split("\n"):
        bullet = ln.lstrip().startswith(("* ", "- "))
        if bullet and not in_list and out and out[-1]:
            out.append("")
        elif in_list and not bullet and ln and not ln.startswith(" "):
            out.append("")
        in_list = bullet or (in_list and ln.startswith(" "))
        out.append(ln)
    return [*out, ""]


HEADER = """\
<!-- Generated by `python -m shared.protodoc` (`make docs`) from the comments in proto/lianfang/v1/*.proto.
     Do not edit: change the .proto comments and run `make docs`. -->

# gRPC 接口 — gRPC contracts (`proto/lianfang/v1/`)

Package `{package}`. These are the calls between nodes that need an answer now; everything else
travels as events on the ledger (docs/ARCHITECTURE.md §2). Every server also answers the standard
`grpc.health.v1.Health` service and server reflection. Every call carries a deadline, mutual TLS with a
certificate from the federation CA, and the metadata `x-lianfang-agency`, `x-lianfang-user`,
`x-lianfang-role` (plus the W3C trace context); see docs/INTEGRATION.md, "gRPC", for how to call them.

| service | rpc | request → response | file |
|---|---|---|---|
"""


def render(fds: descriptor_pb2.FileDescriptorSet | None = None) -> str:
    fds = descriptor_set() if fds is None else fds
    files = sorted(fds.file, key=lambda f: f.name)
    packages = sorted({f.package for f in files})
    known = {name for f in files for name, _, _ in _types(f, Comments.of(f))}
    lines = HEADER.format(package="`, `".join(packages)).split("\n")[:-1]
    for f in files:
        for s in f.service:
            for m in s.method:
                lines.append(f"| [`{s.name}`](#{_anchor(s.name)}) | `{m.name}` | "
                             f"{_type_ref(_short(m.input_type, f.package), known)} → "
                             f"{_type_ref(_short(m.output_type, f.package), known)} | `{f.name}` |")
    lines.append("")
    for f in files:
        c, pkg = Comments.of(f), f.package
        lines += [f"## `{f.name}`", ""]
        lines += _block(c.file_comment())
        for si, s in enumerate(f.service):
            lines += [f'<a id="{_anchor(s.name)}"></a>', "", f"### service `{s.name}`", ""]
            lines += _block(c.leading((_F_SERVICE, si)))
            for mi, m in enumerate(s.method):
                req, rep = _short(m.input_type, pkg), _short(m.output_type, pkg)
                stream_in = "stream " if m.client_streaming else ""
                stream_out = "stream " if m.server_streaming else ""
                lines += [f"#### rpc `{s.name}.{m.name}`", "",
                          f"`rpc {m.name}({stream_in}{req}) returns ({stream_out}{rep})` — request "
                          f"{_type_ref(req, known)}, response {_type_ref(rep, known)}.", ""]
                lines += _block(c.leading((_F_SERVICE, si, _S_METHOD, mi)))
        for name, d, path in _types(f, c):
            lines += [f'<a id="{_anchor(name)}"></a>', ""]
            if isinstance(d, descriptor_pb2.DescriptorProto):
                lines += [f"### message `{name}`", ""]
                lines += _block(c.leading(path))
                if d.field:
                    lines += ["| # | field | type | description |", "|---|---|---|---|"]
                    for fi, fld in enumerate(d.field):
                        lines.append(f"| {fld.number} | `{fld.name}` | {_field_type(fld, pkg, known)} | "
                                     f"{_cell(c.text(path + (_M_FIELD, fi)))} |")
                    lines.append("")
                else:
                    lines += ["(no fields)", ""]
            else:
                lines += [f"### enum `{name}`", ""]
                lines += _block(c.leading(path))
                lines += ["| value | name | description |", "|---|---|---|"]
                for vi, v in enumerate(d.value):
                    lines.append(f"| {v.number} | `{v.name}` | {_cell(c.text(path + (_E_VALUE, vi)))} |")
                lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m shared.protodoc", description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=OUT, help="where to write (default docs/GRPC.md)")
    ap.add_argument("--check", action="store_true", help="exit 1 if the file is not up to date; write nothing")
    args = ap.parse_args(argv)
    text = render()
    current = args.out.read_text(encoding="utf-8") if args.out.exists() else None
    if args.check:
        if current != text:
            print(f"{args.out} is out of date: run `make docs`", file=sys.stderr)
            return 1
        return 0
    if current != text:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
