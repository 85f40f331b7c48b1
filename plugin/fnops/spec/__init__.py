"""function.yaml + releases/<env>.yaml: load, merge overlays, validate."""

from __future__ import annotations

import os

from .. import yamldoc
from ..errors import Problem, SpecError, UsageError
from .check import unique
from .function import environments_of, resolve
from .limits import MAX_ENVIRONMENTS
from .model import Function, Release
from .platform import Platform
from .release import check_release, load_release, release_path

__all__ = ["Function", "Platform", "Release", "largest_field", "load_function", "load_release_for", "validate_folder",
           "release_path"]


def _display(folder: str, *parts: str) -> str:
    return os.path.normpath(os.path.join(folder, *parts))


def _doc(folder: str) -> yamldoc.Doc:
    if not os.path.isdir(folder):
        raise SpecError([Problem(folder, 1, 1, "not a directory; expected a function folder with function.yaml")])
    return yamldoc.load(os.path.join(folder, "function.yaml"), _display(folder, "function.yaml"), root=folder)


def check_environment(env: str | None) -> None:
    """An environment name becomes a file name (releases/<env>.yaml) and a label: a DNS
    label before it touches a path."""
    from .units import is_dns1123_label, shown

    if env is not None and not is_dns1123_label(env):
        raise UsageError(f"'{shown(env)}' is not an environment name (lowercase letters, digits and '-', "
                         "at most 63 characters)")


def load_function(folder: str, env: str | None, platform: Platform | None = None) -> Function:
    """The function as `env` sees it on `platform` (default: the one FNOPS_* in this
    process's environment describe, so CI, the bridge and the CMP agree when configured
    alike); SpecError (exit 2) on any problem."""
    check_environment(env)
    doc = _doc(folder)
    fn, checker = resolve(doc, folder, env, Platform.from_environ() if platform is None else platform)
    checker.raise_if_any()
    return fn


def largest_field(folder: str, env: str | None) -> Problem:
    """Where the top-level field that takes the most room is written (for `env`), as a
    Problem to fill in: what a render over its size budget should trim."""
    import json  # an error path only

    from .function import merged_for

    doc = merged_for(_doc(folder), env)
    sizes = {k: len(json.dumps(v, default=str)) for k, v in doc.value.items()} if isinstance(doc.value, dict) else {}
    if not sizes:
        return Problem(doc.path, 1, 1, "")
    key = max(sizes, key=sizes.get)
    line, col = doc.key_at((key,))
    return Problem(doc.path, line, col, key)


def load_release_for(fn: Function) -> Release:
    if fn.environment is None:
        raise ValueError("a release belongs to an environment")
    path = release_path(fn.folder, fn.environment)
    display = _display(fn.folder, "releases", f"{fn.environment}.yaml")
    if not os.path.exists(path):
        raise SpecError([Problem(display, 1, 1, f"no release pinned for environment '{fn.environment}'; "
                                 f"run `fnops bump {fn.name} --env {fn.environment} --image <repo>@sha256:…` "
                                 "(or `fnops ship`) first")])
    return load_release(fn.folder, fn.environment, fn.name, fn.image, display)


def bad_release_names(folder: str) -> list[Problem]:
    """releases/ holds <env>.yaml pins only; any other name is reported, never loaded."""
    from .units import is_dns1123_label

    rel = os.path.join(folder, "releases")
    names = sorted(os.listdir(rel)) if os.path.isdir(rel) else []
    return [Problem(_display(folder, "releases", n), 1, 1, "not an environment's pin: names are <env>.yaml with "
                    "<env> a DNS label") for n in names if n.endswith(".yaml") and not is_dns1123_label(n[:-5])]


def validate_folder(folder: str, platform: Platform | None = None) -> list[Problem]:
    """Every problem in a function folder: the top level, each environment, each release."""
    platform = Platform.from_environ() if platform is None else platform
    try:
        doc = _doc(folder)
    except SpecError as e:
        return e.problems
    problems: list[Problem] = []
    _, checker = resolve(doc, folder, None, platform)
    problems += checker.all_problems()
    if not isinstance(doc.value, dict):
        return unique(problems)
    problems += bad_release_names(folder)[:MAX_ENVIRONMENTS]
    if str(doc.value.get("runtime", "")).startswith("node"):
        from .packagejson import check as check_package_json  # node folders only: render never loads it

        problems += check_package_json(folder, _display(folder))[1]
    envs = all_envs = environments_of(doc, folder)
    if len(envs) > MAX_ENVIRONMENTS:
        # Each environment is a full check: their number bounds what validation costs.
        overlays = doc.value.get("environments")
        if not (isinstance(overlays, dict) and len(overlays) > MAX_ENVIRONMENTS):  # else the overlays said so
            problems.append(Problem(_display(folder, "releases"), 1, 1, f"{len(envs)} environments (overlays and "
                                    f"pins together); at most {MAX_ENVIRONMENTS}, and only those are checked"))
        envs = envs[:MAX_ENVIRONMENTS]
    for env in envs:
        fn_env, c = resolve(doc, folder, env, platform, all_envs)
        problems += c.all_problems()
        if fn_env is not None and os.path.exists(release_path(folder, env)):
            problems += check_release(folder, env, fn_env.name, fn_env.image, _display(folder, "releases", f"{env}.yaml"))
    return unique(problems)
