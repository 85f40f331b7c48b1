"""Bridge configuration (YAML). Secrets only through `*Env` keys naming environment
variables; `fnops bridge check-config` reports every problem with file:line:col."""

from __future__ import annotations

import os
from collections import namedtuple

from .. import yamldoc
from ..errors import Problem, SpecError
from ..spec import units
from ..spec.check import Checker

Config = namedtuple("Config", "path host port token hmac_secret store_path max_body gitops slack github rollback")
GitOps = namedtuple("GitOps", "repo branch audit_branch token functions_dir github_repo")
Slack = namedtuple("Slack", "token default_channel base_url")
GitHub = namedtuple("GitHub", "token base_url")
Rollback = namedtuple("Rollback", "bake_seconds")

TOP = ("listen", "auth", "store", "maxBodyBytes", "gitops", "slack", "github", "rollback")


def _env(c: Checker, path, name, *, required: bool):
    """Read the variable a `*Env` key names; a problem if it is required and unset."""
    if name is None:
        return None
    if not isinstance(name, str) or not name:
        c.fail(path, "expected the name of an environment variable")
        return None
    value = os.environ.get(name)
    if required and not value:
        c.fail(path, f"environment variable {name} is not set")
    return value or None


def load(path: str) -> Config:
    doc = yamldoc.load(path)
    c = Checker(doc)
    v = c.mapping((), doc.value, TOP)
    listen = c.typed(("listen",), v.get("listen", "127.0.0.1:8080"), str) or ""
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        c.fail(("listen",), f"'{listen}' is not host:port (e.g. 0.0.0.0:8080)")
        port = "0"
    auth = c.mapping(("auth",), v.get("auth"), ("bearerTokenEnv", "hmacSecretEnv"))
    if not auth:
        c.fail(("auth",), "is required: bearerTokenEnv and/or hmacSecretEnv (every POST is authenticated)")
    token = _env(c, ("auth", "bearerTokenEnv"), auth.get("bearerTokenEnv"), required=True)
    hmac_secret = _env(c, ("auth", "hmacSecretEnv"), auth.get("hmacSecretEnv"), required=True)
    store = c.typed(("store",), v.get("store", "sqlite:///var/lib/fnops/bridge.db"), str) or ""
    if not store.startswith("sqlite:///"):
        c.fail(("store",), f"'{store}' is not supported; use sqlite:///<path> (a volume that survives restarts)")
    max_body = c.integer(("maxBodyBytes",), v.get("maxBodyBytes", 1 << 20), 1024, 64 << 20) or (1 << 20)
    g = c.mapping(("gitops",), v.get("gitops"), ("repo", "branch", "auditBranch", "tokenEnv", "functionsDir",
                                                 "githubRepo"))
    if not g.get("repo"):
        c.fail(("gitops",), "'repo' is required: the GitOps repository Argo CD watches")
    gitops = GitOps(c.typed(("gitops", "repo"), g.get("repo"), str), c.typed(("gitops", "branch"), g.get("branch", "main"), str),
                    c.typed(("gitops", "auditBranch"), g.get("auditBranch", "fnops-audit"), str),
                    _env(c, ("gitops", "tokenEnv"), g.get("tokenEnv"), required=False),
                    c.typed(("gitops", "functionsDir"), g.get("functionsDir", "functions"), str),
                    c.typed(("gitops", "githubRepo"), g.get("githubRepo"), str))
    if gitops.branch and gitops.branch == gitops.audit_branch:
        c.fail(("gitops", "auditBranch"), "must differ from the branch Argo CD watches")
    s = c.mapping(("slack",), v.get("slack"), ("tokenEnv", "defaultChannel", "baseUrl"))
    slack = None
    if s:
        slack = Slack(_env(c, ("slack", "tokenEnv"), s.get("tokenEnv"), required=True),
                      c.typed(("slack", "defaultChannel"), s.get("defaultChannel"), str),
                      c.typed(("slack", "baseUrl"), s.get("baseUrl"), str))
        if not s.get("tokenEnv"):
            c.fail(("slack",), "'tokenEnv' is required")
    gh = c.mapping(("github",), v.get("github"), ("tokenEnv", "baseUrl"))
    github = None
    if gh:
        github = GitHub(_env(c, ("github", "tokenEnv"), gh.get("tokenEnv"), required=True),
                        c.typed(("github", "baseUrl"), gh.get("baseUrl"), str))
        if not gh.get("tokenEnv"):
            c.fail(("github",), "'tokenEnv' is required")
    rb = c.mapping(("rollback",), v.get("rollback"), ("bakeTime",))
    bake = c.parsed(("rollback", "bakeTime"), rb.get("bakeTime", "15m"), units.whole_seconds, 0, 7 * 86400)
    c.raise_if_any()
    return Config(path, host, int(port), token, hmac_secret, store[len("sqlite:///") - 1:], max_body, gitops, slack,
                  github, Rollback(bake if bake is not None else 900))


def check(path: str) -> list[Problem]:
    try:
        load(path)
    except SpecError as e:
        return e.problems
    return []
