"""Safe YAML with positions.

Every input file fnops reads (function.yaml, releases/<env>.yaml, bridge config) comes
through here so that errors can say `path:line:col`. These files are written by anyone
with push access and parsed inside Argo CD for every app, so the parse is bounded before
anything recursive runs: the event stream (libyaml's parser, which keeps its own stack) is
checked first for depth, scalar size and node count; only then does the composer build
nodes (an alias is a reference there, never a copy), from which we build plain Python
values, refusing custom tags, duplicate keys and numbers no person writes. Aliases and
merge keys work, but what they expand to is bounded in nodes *and* bytes, so alias
amplification ("billion laughs", or a long string aliased many times) fails fast.
Files are opened only when they are regular files inside the folder they belong to.
"""

from __future__ import annotations

import os
import stat

import yaml

from .errors import Problem, SpecError

try:  # libyaml is 5-10x faster; the pure-Python composer is the fallback.
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on the build of PyYAML
    from yaml import SafeLoader as _Loader

MAX_BYTES = 256 * 1024
MAX_NODES = 20_000  # counted after alias expansion
MAX_EXPANDED_BYTES = 512 * 1024  # scalar bytes after alias expansion
MAX_DEPTH = 64
MAX_SCALAR_BYTES = 16 * 1024  # one value; a PEM certificate in `env` fits
MAX_NUMBER_CHARS = 32  # an int or float longer than this is not a setting

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
_SCALARS = {
    _STR,
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",  # kept as the text written, not a datetime
}

Path = tuple  # of str (mapping keys) and int (sequence indexes)


class Doc:
    """A loaded document: the plain value plus where every part of it was written."""

    __slots__ = ("path", "value", "marks", "key_marks")

    def __init__(self, path: str, value, marks=None, key_marks=None):
        self.path = path
        self.value = value
        self.marks = marks or {}  # Path -> (line, col) of the value
        self.key_marks = key_marks or {}  # Path -> (line, col) of the key

    def at(self, path: Path) -> tuple[int, int]:
        """Best position for `path`: the value, else the key, else the nearest parent."""
        p = tuple(path)
        while True:
            if p in self.marks:
                return self.marks[p]
            if p in self.key_marks:
                return self.key_marks[p]
            if not p:
                return (1, 1)
            p = p[:-1]

    def key_at(self, path: Path) -> tuple[int, int]:
        return self.key_marks.get(tuple(path)) or self.at(path)

    def problem(self, path: Path, message: str, *, key: bool = False) -> Problem:
        line, col = self.key_at(path) if key else self.at(path)
        return Problem(self.path, line, col, message)


def _fail(path: str, mark, message: str) -> SpecError:
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    return SpecError([Problem(path, line, col, message)])


class _Builder:
    def __init__(self, path: str):
        self.path = path
        self.count = 0
        self.bytes = 0
        self.marks: dict = {}
        self.key_marks: dict = {}
        self._scalar = yaml.constructor.SafeConstructor()  # its scalar constructors only

    def build(self, node, p: Path, depth: int):
        self.count += 1
        if self.count > MAX_NODES:
            raise _fail(
                self.path,
                node.start_mark,
                f"document expands to more than {MAX_NODES} nodes "
                "(alias/anchor expansion is bounded); write the values out",
            )
        if depth > MAX_DEPTH:
            raise _fail(self.path, node.start_mark, f"nesting deeper than {MAX_DEPTH} levels")
        self.marks.setdefault(p, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.ScalarNode):
            self.bytes += len(node.value)
            if self.bytes > MAX_EXPANDED_BYTES:
                raise _fail(self.path, node.start_mark, f"document expands to more than {MAX_EXPANDED_BYTES // 1024} KiB "
                            "of values (alias/anchor expansion is bounded); write the values out")
            return self._scalar_value(node)
        if isinstance(node, yaml.SequenceNode):
            self._check_tag(node, _SEQ)
            return [self.build(n, p + (i,), depth + 1) for i, n in enumerate(node.value)]
        self._check_tag(node, _MAP)
        return self._mapping(node, p, depth)

    def _mapping(self, node, p: Path, depth: int) -> dict:
        out: dict = {}
        merged: dict = {}
        for knode, vnode in node.value:
            if knode.tag == _MERGE:
                for src in vnode.value if isinstance(vnode, yaml.SequenceNode) else [vnode]:
                    if not isinstance(src, yaml.MappingNode):
                        raise _fail(self.path, src.start_mark, "'<<' merges only mappings")
                    for k, v in self._mapping(src, p, depth).items():
                        merged.setdefault(k, v)
                continue
            if not isinstance(knode, yaml.ScalarNode):
                raise _fail(self.path, knode.start_mark, "mapping keys must be plain scalars")
            self.bytes += len(knode.value)
            key = self._scalar_value(knode)
            if not isinstance(key, str):
                key = knode.value  # `1: x` or `on: x` keep the text as written
            if key in out:
                raise _fail(self.path, knode.start_mark, f"duplicate key '{key}'")
            self.key_marks[p + (key,)] = (knode.start_mark.line + 1, knode.start_mark.column + 1)
            out[key] = self.build(vnode, p + (key,), depth + 1)
        for k, v in merged.items():
            out.setdefault(k, v)
        return out

    def _check_tag(self, node, want: str) -> None:
        if node.tag != want:
            raise _fail(
                self.path, node.start_mark, f"tag '{node.tag}' is not allowed (plain YAML only)"
            )

    def _scalar_value(self, node):
        tag = node.tag
        if tag not in _SCALARS:
            raise _fail(
                self.path, node.start_mark, f"tag '{tag}' is not allowed (plain YAML only)"
            )
        if tag in (_STR, "tag:yaml.org,2002:timestamp"):
            return node.value
        ctor = self._scalar
        if tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float"):
            if len(node.value) > MAX_NUMBER_CHARS:
                raise _fail(self.path, node.start_mark, f"number longer than {MAX_NUMBER_CHARS} characters; "
                            "quote it if it is text")
            try:
                if tag == "tag:yaml.org,2002:int":
                    return ctor.construct_yaml_int(node)
                return ctor.construct_yaml_float(node)
            except ValueError:
                raise _fail(self.path, node.start_mark, "not a number YAML can read; quote it if it is text") from None
        if tag == "tag:yaml.org,2002:bool":
            return ctor.construct_yaml_bool(node)
        return None


def _check_events(text: str, path: str) -> None:
    """One linear pass over the parser's events: bounded depth, scalars and nodes — before
    the (recursive) composer ever sees the document."""
    depth = nodes = 0
    for ev in yaml.parse(text, Loader=_Loader):
        kind = type(ev)
        if kind is yaml.ScalarEvent:
            nodes += 1
            if len(ev.value) > MAX_SCALAR_BYTES:
                raise _fail(path, ev.start_mark, f"value longer than {MAX_SCALAR_BYTES // 1024} KiB")
        elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
            nodes += 1
            depth += 1
            if depth > MAX_DEPTH:
                raise _fail(path, ev.start_mark, f"nesting deeper than {MAX_DEPTH} levels")
        elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
            depth -= 1
        if nodes > MAX_NODES:
            raise _fail(path, ev.start_mark, f"more than {MAX_NODES} values in one file")


def loads(text: str, path: str) -> Doc:
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise SpecError([Problem(path, 1, 1, f"file is larger than {MAX_BYTES // 1024} KiB")])
    try:
        _check_events(text, path)
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as e:
        if "another document" in str(e.problem or "") or "more than one document" in str(e.problem or ""):
            raise _fail(path, e.problem_mark, "expected one YAML document, found several") from None
        raise _fail(path, e.problem_mark, f"invalid YAML: {e.problem}") from None
    except yaml.YAMLError as e:  # reader errors: bad bytes
        raise SpecError([Problem(path, 1, 1, f"invalid YAML: {str(e).splitlines()[0][:200]}")]) from None
    if node is None:
        return Doc(path, None)
    b = _Builder(path)
    value = b.build(node, (), 0)
    return Doc(path, value, b.marks, b.key_marks)


def _inside(path: str, root: str) -> bool:
    real, top = os.path.realpath(path), os.path.realpath(root)
    return real == top or real.startswith(top.rstrip(os.sep) + os.sep)


def read_bytes(path: str, shown: str, root: str | None = None, limit: int = MAX_BYTES) -> bytes:
    """The bytes of a regular file of at most `limit` bytes whose real path is inside `root`
    (when given). A symlink out of the folder, a device, a FIFO or a directory is refused
    without reading it, so nothing outside the folder reaches a message."""
    if root is not None and not _inside(path, root):
        raise SpecError([Problem(shown, 1, 1, "is a link to outside the function folder; not read")])
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise SpecError([Problem(shown, 1, 1, "file not found")]) from None
    except IsADirectoryError:
        raise SpecError([Problem(shown, 1, 1, "is a directory, expected a YAML file")]) from None
    except OSError as e:
        raise SpecError([Problem(shown, 1, 1, f"cannot be read ({e.strerror})")]) from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if stat.S_ISDIR(st.st_mode):
            raise SpecError([Problem(shown, 1, 1, "is a directory, expected a YAML file")])
        if not stat.S_ISREG(st.st_mode):
            raise SpecError([Problem(shown, 1, 1, "is not a regular file; not read")])
        if st.st_size > limit:
            raise SpecError([Problem(shown, 1, 1, f"file is larger than {limit // 1024} KiB")])
        raw = f.read(limit + 1)
    if len(raw) > limit:
        raise SpecError([Problem(shown, 1, 1, f"file is larger than {limit // 1024} KiB")])
    return raw


def load(path: str, display: str | None = None, root: str | None = None) -> Doc:
    """Load `path`; errors name `display` (the path as the user knows it). With `root`,
    the file must be a regular file whose real path is inside `root`."""
    shown = display or path
    raw = read_bytes(path, shown, root)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecError([Problem(shown, 1, 1, f"not UTF-8 text (byte {e.start})")]) from None
    return loads(text, shown)
