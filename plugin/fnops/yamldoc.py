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
from .escape import shown

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


_EXPANDS = "(alias/anchor expansion is bounded); write the values out"


class _Frame:
    """An open sequence or mapping while its events stream by."""

    __slots__ = ("kind", "value", "path", "anchor", "mark", "log_start", "nodes", "bytes", "height",
                 "key", "key_mark", "merging", "merged")

    def __init__(self, kind, value, path, anchor, mark, log_start, nodes, nbytes):
        self.kind, self.value, self.path, self.anchor, self.mark = kind, value, path, anchor, mark
        self.log_start, self.nodes, self.bytes, self.height = log_start, nodes, nbytes, 0
        self.key = None  # mapping: the key waiting for its value (None: a key comes next)
        self.key_mark = None
        self.merging = False  # the pending key is `<<`
        self.merged: list = []  # mappings to merge in after the frame's own keys


class _Builder:
    """Plain values from the parser's event stream in one pass, with an explicit stack.

    Nothing recurses, so depth is checked as it grows; an alias reuses the value its anchor
    built and is charged what that anchor expanded to (nodes, bytes, height), so every bound
    holds after expansion without expanding twice."""

    def __init__(self, path: str):
        self.path = path
        self.nodes = 0
        self.bytes = 0
        self.marks: dict = {}
        self.key_marks: dict = {}
        self.log: list = []  # (is_key, path, mark): what an anchor copies to its aliases
        self.anchors: dict = {}  # name -> (value, path, marks, nodes, bytes, height)
        self._scalar = yaml.constructor.SafeConstructor()  # its scalar constructors only
        self._resolver = yaml.resolver.Resolver()

    def _mark(self, ev) -> tuple[int, int]:
        return (ev.start_mark.line + 1, ev.start_mark.column + 1)

    def _charge(self, ev, nodes: int, nbytes: int) -> None:
        self.nodes += nodes
        self.bytes += nbytes
        if self.nodes > MAX_NODES:
            raise _fail(self.path, ev.start_mark, f"document has more than {MAX_NODES} values {_EXPANDS}")
        if self.bytes > MAX_EXPANDED_BYTES:
            raise _fail(self.path, ev.start_mark,
                        f"document expands to more than {MAX_EXPANDED_BYTES // 1024} KiB of values {_EXPANDS}")

    def _place(self, path: Path, mark) -> None:
        self.marks.setdefault(path, mark)
        self.log.append((False, path, mark))

    def build(self, events):
        stack: list = []
        result = None
        docs = 0
        for ev in events:
            kind = type(ev)
            if kind is yaml.DocumentStartEvent:
                docs += 1
                if docs > 1:
                    raise _fail(self.path, ev.start_mark, "expected one YAML document, found several")
                continue
            if kind in (yaml.StreamStartEvent, yaml.StreamEndEvent, yaml.DocumentEndEvent):
                continue
            top = stack[-1] if stack else None
            if top is not None and top.kind == "map" and top.key is None and kind is not yaml.MappingEndEvent:
                self._key(top, ev)  # the event is the next key of an open mapping
                continue
            path = () if top is None else (top.path + ((len(top.value),) if top.kind == "seq" else (top.key,)))
            if kind is yaml.ScalarEvent:
                if len(ev.value) > MAX_SCALAR_BYTES:
                    raise _fail(self.path, ev.start_mark, f"value longer than {MAX_SCALAR_BYTES // 1024} KiB")
                self._charge(ev, 1, len(ev.value))
                self._place(path, self._mark(ev))
                value = self._scalar_value(ev)
                done = (value, 1, len(ev.value), 0)
                if ev.anchor:
                    self.anchors[ev.anchor] = (value, path, [], 1, len(ev.value), 0)
            elif kind is yaml.AliasEvent:
                if ev.anchor not in self.anchors:
                    raise _fail(self.path, ev.start_mark, f"unknown alias '*{ev.anchor}'")
                value, apath, amarks, nodes, nbytes, height = self.anchors[ev.anchor]
                if len(stack) + height > MAX_DEPTH:
                    raise _fail(self.path, ev.start_mark, f"nesting deeper than {MAX_DEPTH} levels {_EXPANDS}")
                self._charge(ev, nodes, nbytes)
                self._place(path, self._mark(ev))
                for is_key, sub, mark in amarks:  # errors inside aliased values point at the anchor
                    target = path + sub[len(apath):]
                    (self.key_marks.__setitem__ if is_key else self.marks.setdefault)(target, mark)
                done = (value, nodes, nbytes, height)
            elif kind is yaml.SequenceStartEvent or kind is yaml.MappingStartEvent:
                want = _SEQ if kind is yaml.SequenceStartEvent else _MAP
                tag = ev.tag if ev.tag not in (None, "!") else want
                if tag != want:
                    raise _fail(self.path, ev.start_mark, f"tag '{tag}' is not allowed (plain YAML only)")
                if len(stack) + 1 > MAX_DEPTH:
                    raise _fail(self.path, ev.start_mark, f"nesting deeper than {MAX_DEPTH} levels")
                self._charge(ev, 1, 0)
                self._place(path, self._mark(ev))
                stack.append(_Frame("seq" if want == _SEQ else "map", [] if want == _SEQ else {}, path, ev.anchor,
                                    ev.start_mark, len(self.log) - 1, self.nodes - 1, self.bytes))
                continue
            else:  # SequenceEndEvent / MappingEndEvent: the frame is complete
                frame = stack.pop()
                if frame.kind == "map":
                    for src in frame.merged:
                        for k, v in src.items():
                            frame.value.setdefault(k, v)
                nodes, nbytes, height = self.nodes - frame.nodes, self.bytes - frame.bytes, frame.height + 1
                if frame.anchor:
                    self.anchors[frame.anchor] = (frame.value, frame.path, self.log[frame.log_start:], nodes, nbytes,
                                                  height)
                value, done = frame.value, (frame.value, nodes, nbytes, height)
                path = frame.path
                top = stack[-1] if stack else None
            if top is None:
                result = done[0]
            else:
                self._attach(top, done, ev)
        return result

    def _key(self, frame: _Frame, ev) -> None:
        if type(ev) is not yaml.ScalarEvent:
            raise _fail(self.path, ev.start_mark, "mapping keys must be plain scalars")
        if len(ev.value) > MAX_SCALAR_BYTES:
            raise _fail(self.path, ev.start_mark, f"value longer than {MAX_SCALAR_BYTES // 1024} KiB")
        self._charge(ev, 0, len(ev.value))
        tag = self._tag(ev)
        if tag == _MERGE:
            frame.merging, frame.key, frame.key_mark = True, "<<", self._mark(ev)
            return
        key = self._scalar_value(ev)
        if not isinstance(key, str):
            key = ev.value  # `1: x` or `on: x` keep the text as written
        if key in frame.value:
            raise _fail(self.path, ev.start_mark, f"duplicate key '{shown(key)}'")
        frame.key, frame.key_mark, frame.merging = key, self._mark(ev), False
        kp = frame.path + (key,)
        self.key_marks[kp] = frame.key_mark
        self.log.append((True, kp, frame.key_mark))

    def _attach(self, frame: _Frame, done, ev) -> None:
        value, _, _, height = done
        frame.height = max(frame.height, height)
        if frame.kind == "seq":
            frame.value.append(value)
            return
        if frame.merging:
            sources = value if isinstance(value, list) else [value]
            for src in sources:
                if not isinstance(src, dict):
                    line, col = frame.key_mark
                    raise SpecError([Problem(self.path, line, col, "'<<' merges only mappings")])
            frame.merged.extend(sources)
            self.marks.pop(frame.path + ("<<",), None)
        else:
            frame.value[frame.key] = value
        frame.key, frame.merging = None, False

    def _tag(self, ev) -> str:
        if ev.tag is None or ev.tag == "!":
            return self._resolver.resolve(yaml.ScalarNode, ev.value, ev.implicit)
        return ev.tag

    def _scalar_value(self, ev):
        tag = self._tag(ev)
        if tag not in _SCALARS:
            raise _fail(self.path, ev.start_mark, f"tag '{tag}' is not allowed (plain YAML only)")
        if tag in (_STR, "tag:yaml.org,2002:timestamp"):
            return ev.value
        if tag == "tag:yaml.org,2002:null":
            return None
        node = yaml.ScalarNode(tag, ev.value, ev.start_mark, ev.end_mark)
        ctor = self._scalar
        if tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float"):
            if len(ev.value) > MAX_NUMBER_CHARS:
                raise _fail(self.path, ev.start_mark, f"number longer than {MAX_NUMBER_CHARS} characters; "
                            "quote it if it is text")
            try:
                if tag == "tag:yaml.org,2002:int":
                    return ctor.construct_yaml_int(node)
                return ctor.construct_yaml_float(node)
            except ValueError:
                raise _fail(self.path, ev.start_mark, "not a number YAML can read; quote it if it is text") from None
        return ctor.construct_yaml_bool(node)


def loads(text: str, path: str) -> Doc:
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise SpecError([Problem(path, 1, 1, f"file is larger than {MAX_BYTES // 1024} KiB")])
    b = _Builder(path)
    try:
        value = b.build(yaml.parse(text, Loader=_Loader))
    except yaml.MarkedYAMLError as e:
        raise _fail(path, e.problem_mark, f"invalid YAML: {e.problem}") from None
    except yaml.YAMLError as e:  # reader errors: bad bytes
        raise SpecError([Problem(path, 1, 1, f"invalid YAML: {str(e).splitlines()[0][:200]}")]) from None
    if value is None and not b.marks:
        return Doc(path, None)
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


def load(path: str, display: str | None = None, root: str | None = None, limit: int = MAX_BYTES) -> Doc:
    """Load `path`; errors name `display` (the path as the user knows it). With `root`,
    the file must be a regular file whose real path is inside `root`; with `limit`, one
    smaller than MAX_BYTES."""
    shown = display or path
    raw = read_bytes(path, shown, root, min(limit, MAX_BYTES))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecError([Problem(shown, 1, 1, f"not UTF-8 text (byte {e.start})")]) from None
    return loads(text, shown)
