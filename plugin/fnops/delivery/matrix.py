"""What a matrix of `fnops ship --no-pin --output json` jobs built, as `fnops pin` may pin it.

Result files arrive from other jobs (artifacts), so they are untrusted input. Each is read
bounded (a regular file, its size, then its nesting counted on the raw bytes before `json`,
which recurses, sees it), every field is typed, and a result pins only what its job built:

- its `sourceCommit` is the commit being pinned (GITHUB_SHA, else HEAD), and its
  `environment` the one pinned: a result of another run, branch, commit or environment is
  not this commit's build, and the pin would record a provenance it does not have;
- `FUNCTION=PATH` says which job the file came from (the caller knows: the pin action
  takes it from the artifact's folder, `fnops-<function>`, a name the workflow gives each
  matrix job and the job's own code cannot choose): that file pins FUNCTION and nothing else;
- a function is pinned from one result only (two results for one function: one of them is
  not its job's);
- with a plan (`fnops ship --plan --output json`, made at the same commit for the same
  environment), only functions the plan listed;
- a name is a function folder (a DNS label, a real folder with function.yaml under
  --functions-dir) before it touches a path, and the image is in the repository that
  function declares (`image:`), else in `<--registry>/<name>`, where `ship` pushes it.
"""

from __future__ import annotations

import json
import os
import stat
from collections import namedtuple

from ..errors import UsageError
from ..escape import shown
from ..jsondepth import depth_ok
from ..types import GitSha, PinnedImage, Repository

MAX_BYTES = 1 << 20  # a row per function is well under 1 KiB
MAX_DEPTH = 8  # {"functions": [{…}]} and {"plan": [{…}]} are 3 levels deep
FORMAT = "the output of `fnops ship --no-pin --output json`"

Built = namedtuple("Built", "function image where")


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number")


def read_json(path: str, what: str = FORMAT):
    """One JSON document from a regular file, bounded before it is parsed; UsageError (one
    line, exit 2) otherwise."""
    name = shown(path, 120)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO cannot hold the open
    except OSError as e:
        raise UsageError(f"{name}: cannot be read ({e.strerror}); want a file holding {what}") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise UsageError(f"{name}: not a regular file; want a file holding {what}")
        raw = f.read(MAX_BYTES + 1)
    if len(raw) > MAX_BYTES:
        raise UsageError(f"{name}: larger than {MAX_BYTES >> 10} KiB; not {what}")
    if not depth_ok(raw, MAX_DEPTH):
        raise UsageError(f"{name}: nests deeper than {MAX_DEPTH} levels; not {what}")
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise UsageError(f"{name}: not JSON; want {what}") from None


def _field(row: dict, key: str, where: str, limit: int = 512) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise UsageError(f"{where}.{key}: {'missing' if value is None else shown(value)}; want text of at "
                         f"most {limit} characters, as `fnops ship --output json` writes it")
    return value


def _rows(data, key: str, where: str, what: str) -> list:
    items = data.get(key) if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise UsageError(f"{where}: no '{key}' list; not {what}")
    return items


def function_name(name: str, where: str) -> str:
    """A function name from a file or a FUNCTION= prefix: a DNS-1035 label, checked before
    it names a path."""
    from ..spec.function import MAX_NAME
    from ..spec.units import is_dns1035

    if not is_dns1035(name, MAX_NAME):
        raise UsageError(f"{where}: '{shown(name)}' is not a function name (lowercase letters, digits and '-', "
                         f"starting with a letter, at most {MAX_NAME} characters)")
    return name


def split_result(arg: str) -> tuple[str | None, str]:
    """RESULT as given: `FUNCTION=PATH` (the result of FUNCTION's job) or a PATH. A prefix
    with a slash is part of a path (`results/a=b.json`)."""
    head, eq, tail = arg.partition("=")
    if not eq or "/" in head or not tail:
        return None, arg
    return function_name(head, f"RESULT '{shown(arg)}'"), tail


def read_plan(path: str, *, env: str, commit: str) -> set[str]:
    """The functions a plan lists; the plan must be of this environment and this commit."""
    what = "the output of `fnops ship --plan --output json` (or the action's `plan` output)"
    data = read_json(path, what)
    items = data if isinstance(data, list) else _rows(data, "plan", shown(path, 120), what)
    names = set()
    for i, item in enumerate(items):
        where = f"{shown(path, 120)}: plan[{i}]"
        if not isinstance(item, dict):
            raise UsageError(f"{where}: not an object; not {what}")
        name = function_name(_field(item, "function", where), where + ".function")
        if _field(item, "environment", where) != env:
            raise UsageError(f"{where}: planned for environment '{shown(item['environment'])}', not '{env}' "
                             "being pinned")
        if _field(item, "sourceCommit", where) != commit:
            raise UsageError(f"{where}: planned at commit '{shown(item['sourceCommit'])}', not {commit} being "
                             "pinned; pin with the plan of this run")
        names.add(name)
    return names


def _function_folder(root: str, functions_dir: str, name: str, where: str) -> str:
    """The function's own folder in this checkout: a real directory inside the repository
    (never a link out of it) holding function.yaml."""
    folder = os.path.join(root, functions_dir, name)
    real = os.path.realpath(folder)
    inside = os.path.commonpath([real, os.path.realpath(root)]) == os.path.realpath(root)
    if os.path.islink(folder) or not inside or not os.path.isfile(os.path.join(folder, "function.yaml")):
        raise UsageError(f"{where}: no function '{name}' under {shown(functions_dir)}/ (a folder with "
                         "function.yaml; set --functions-dir)")
    return folder


def _check_repository(fn, name: str, image: PinnedImage, registry: str | None, where: str) -> None:
    if fn.image:
        if image.repository != fn.image:
            raise UsageError(f"{where}: {image.repository} is not {name}'s repository {fn.image} (its "
                             "function.yaml `image:`); only that repository is pinned for it")
        return
    if registry is None:
        raise UsageError(f"{where}: {name} declares no `image:`; pass --registry (as `fnops ship` got it) so "
                         f"its repository, <registry>/{name}, can be checked")
    want = f"{registry}/{name}"
    if image.repository != want:
        raise UsageError(f"{where}: {image.repository} is not {want}, where `fnops ship --registry {registry}` "
                         f"pushes {name}")


def read_results(results, *, env: str, commit: GitSha, root: str, functions_dir: str,
                 registry: Repository | None = None, plan: set[str] | None = None) -> list[Built]:
    """-> what to pin, one Built per function, after every rule in this module's docstring;
    UsageError (exit 2) on the first that fails, before anything is written. `registry`
    without a trailing slash."""
    from ..spec import load_function

    seen: dict[str, str] = {}
    out = []
    for arg in results:
        bound, path = split_result(arg)
        data = read_json(path)
        name_of_file = shown(path, 120)
        for i, row in enumerate(_rows(data, "functions", name_of_file, FORMAT)):
            where = f"{name_of_file}: functions[{i}]"
            if not isinstance(row, dict):
                raise UsageError(f"{where}: not an object; not {FORMAT}")
            name = function_name(_field(row, "function", where), where + ".function")
            if bound is not None and name != bound:
                raise UsageError(f"{where}: {name} was not built by this job; the result of {bound}'s job pins "
                                 f"{bound} only")
            if name in seen:
                raise UsageError(f"{where}: {name} is also in {seen[name]}; a function is pinned from the "
                                 "result of its own job only")
            seen[name] = where
            if plan is not None and name not in plan:
                raise UsageError(f"{where}: {name} is not in the plan; only what the plan listed is pinned")
            if _field(row, "environment", where) != env:
                raise UsageError(f"{where}: built for environment '{shown(row['environment'])}', not '{env}' "
                                 "being pinned")
            if _field(row, "sourceCommit", where, 64) != commit:
                raise UsageError(f"{where}: built from commit '{shown(row['sourceCommit'])}', not {commit} being "
                                 "pinned; pin the results of this run only")
            if row.get("pushed", True) is not True:
                raise UsageError(f"{where}: {name} was not pushed (a dry run); nothing to pin")
            try:
                image = PinnedImage.parse(_field(row, "image", where))
            except ValueError as e:
                raise UsageError(f"{where}.image: {shown(str(e), 200)}") from None
            fn = load_function(os.path.relpath(_function_folder(root, functions_dir, name, where)), env)
            _check_repository(fn, name, image, registry, where)
            out.append(Built(name, image, where))
    return sorted(out, key=lambda b: b.function)
