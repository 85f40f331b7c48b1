"""fnops' own single-pass YAML builder agrees with PyYAML's safe loader on every document
either accepts — anchors, aliases, merge keys, flow and block styles, every scalar type —
and knows where each value was written."""

from __future__ import annotations

import glob
import os

import pytest
import yaml

from conftest import EXAMPLES, ROOT
from fnops import yamldoc
from fnops.errors import SpecError

DOCS = {
    "scalars": "a: 1\nb: -2.5\nc: true\nd: ~\ne: 'q'\nf: \"x\\ty\"\ng: 0x1f\nh: 1_000\ni: .inf\nj: off\nk: ''\n",
    "block-and-flow": "l: [1, [2, 3], {x: y}]\nm:\n  - a\n  - {b: [c, d]}\n  -\n    - e\n",
    "anchors": "base: &b {min: 1, max: 3}\nuse: *b\nlist: &l [1, 2]\nagain: [*l, *l]\ns: &s text\nt: *s\n",
    "merge": "base: &b {min: 1, max: 3}\ndev:\n  <<: *b\n  max: 5\n",
    "merge-list": "a: &a {x: 1, y: 1}\nb: &b {y: 2, z: 2}\nc: {<<: [*a, *b], z: 3}\n",
    "merge-after-keys": "a: &a {x: 1}\nc:\n  x: 0\n  <<: *a\n",
    "nested-anchor": "outer: &o {inner: &i [1, {k: v}], n: 2}\nref_o: *o\nref_i: *i\n",
    "block-scalars": "lit: |\n  line 1\n  line 2\nfold: >-\n  a\n  b\n",
    "empty-values": "a:\nb: []\nc: {}\n",
    "top-sequence": "- 1\n- two\n",
    "top-scalar": "just text\n",
}


def _files():
    for path in sorted(glob.glob(os.path.join(EXAMPLES, "*", "function.yaml"))):
        yield path
    yield from sorted(glob.glob(os.path.join(ROOT, "notifications", "*.yaml")))


@pytest.mark.parametrize("name", sorted(DOCS))
def test_same_values_as_pyyaml(name):
    assert yamldoc.loads(DOCS[name], "x.yaml").value == yaml.safe_load(DOCS[name])


@pytest.mark.parametrize("path", list(_files()), ids=os.path.basename)
def test_same_values_as_pyyaml_on_the_shipped_files(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        want = list(yaml.safe_load_all(text))
    except yaml.YAMLError:
        pytest.skip("not YAML PyYAML reads")
    if len(want) != 1:
        pytest.skip("a multi-document stream")
    assert yamldoc.loads(text, path).value == want[0]


def test_keys_keep_the_text_as_written():
    """`on:` is the key "on" (GitHub workflows, Kubernetes labels), not True."""
    assert yamldoc.loads("1: one\non: yes\nnull: n\n", "x.yaml").value == {"1": "one", "on": True, "null": "n"}


def test_positions_follow_values_keys_and_aliases():
    doc = yamldoc.loads("base: &b\n  min: 1\n  max: x\ndev: *b\nlist:\n  - a\n  - b\n", "f.yaml")
    assert doc.marks[("base", "max")] == (3, 8) and doc.key_marks[("base", "max")] == (3, 3)
    assert doc.marks[("dev",)] == (4, 6)  # the alias itself
    assert doc.marks[("dev", "max")] == (3, 8)  # inside an alias: where the anchor wrote it
    assert doc.marks[("list", 1)] == (7, 5)


@pytest.mark.parametrize("text,where,fragment", [
    ("a: 1\na: 2\n", (2, 1), "duplicate key 'a'"),
    ("? [x]\n: 1\n", (1, 3), "mapping keys must be plain scalars"),
    ("a: !!python/object:os.system x\n", (1, 4), "is not allowed"),
    ("a: !!set {x}\n", (1, 4), "tag 'tag:yaml.org,2002:set' is not allowed"),
    ("a: 1\n---\nb: 2\n", (2, 1), "expected one YAML document"),
    ("m: {<<: [1]}\n", (1, 5), "'<<' merges only mappings"),
    ("a: &a [[[[1]]]]\n" + "".join(f"l{i}: &l{i} [*{'a' if i == 0 else f'l{i - 1}'}]\n" for i in range(70)), None,
     "nesting deeper than 64 levels"),
])
def test_refusals_point_at_the_place(text, where, fragment):
    with pytest.raises(SpecError) as e:
        yamldoc.loads(text, "f.yaml")
    p = e.value.problems[0]
    assert fragment in p.message
    if where:
        assert (p.line, p.col) == where
