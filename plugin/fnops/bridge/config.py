"""Bridge configuration (YAML). Secrets only through `*Env` keys naming environment
variables; `fnops bridge check-config` reports every problem with file:line:col."""

from __future__ import annotations

import os
from collections import namedtuple

from .. import yamldoc
from ..errors import Problem, SpecError
from ..spec import units
from ..spec.check import Checker
from .events import SLO_ALERTS
from .origin import (DEFAULT_APPLICATION, DEFAULT_APPLICATION_NAMESPACE, DEFAULT_NAMESPACE, Origins,
                     template_problem)

Config = namedtuple("Config", "path host port token hmac_secret store_url max_body gitops slack github rollback "
                               "tokens argocd_url delivery retention data_dir origins http catch_up scaling",
                    defaults=(None, None))
GitOps = namedtuple("GitOps", "repo branch audit_branch token functions_dir github_repo")
Slack = namedtuple("Slack", "token default_channel base_url allowed_channels")
GitHub = namedtuple("GitHub", "token base_url allowed_repos min_write_interval")
Rollback = namedtuple("Rollback", "bake_seconds alert_names alert_namespaces")
Delivery = namedtuple("Delivery", "max_attempts max_backoff timeout lease")
Retention = namedtuple("Retention", "done_after max_pending_events")
# The door against slow or surplus connections (bridge/guard.py): seconds, and a count.
Http = namedtuple("Http", "max_connections header_timeout body_timeout keep_alive")
# Where the catch-up reads Argo CD's Applications (bridge/catchup.py): a Kubernetes API.
CatchUp = namedtuple("CatchUp", "url token_file token ca_file interval max_age")
# Scaling history (bridge/scaling.py): transitions recorded per function and environment per
# hour, and the token KEDA puts in its sink URL (its http sink sends no headers).
Scaling = namedtuple("Scaling", "max_per_hour path_token")

TOP = ("listen", "auth", "store", "dataDir", "maxBodyBytes", "gitops", "slack", "github", "rollback", "argocd", "delivery",
       "retention", "http", "scaling")


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
    auth = c.mapping(("auth",), v.get("auth"), ("bearerTokenEnv", "hmacSecretEnv", "argocdTokenEnv",
                                                "alertmanagerTokenEnv", "kedaTokenEnv", "kedaPathTokenEnv"))
    if not auth:
        c.fail(("auth",), "is required: bearerTokenEnv and/or hmacSecretEnv (every POST is authenticated)")
    token = _env(c, ("auth", "bearerTokenEnv"), auth.get("bearerTokenEnv"), required=True)
    hmac_secret = _env(c, ("auth", "hmacSecretEnv"), auth.get("hmacSecretEnv"), required=True)
    # Each door may have its own token, so Alertmanager's cannot post Argo CD events.
    tokens = {"argocd": _env(c, ("auth", "argocdTokenEnv"), auth.get("argocdTokenEnv"), required=True),
              "alertmanager": _env(c, ("auth", "alertmanagerTokenEnv"), auth.get("alertmanagerTokenEnv"),
                                   required=True),
              "keda": _env(c, ("auth", "kedaTokenEnv"), auth.get("kedaTokenEnv"), required=True)}
    # KEDA's CloudEventSource posts to a URI and sends no headers: its door may take a token
    # in the path instead (/v1/keda/<token>), which opens that door only.
    keda_path_token = _env(c, ("auth", "kedaPathTokenEnv"), auth.get("kedaPathTokenEnv"), required=True)
    if keda_path_token and (len(keda_path_token) < 24 or not keda_path_token.isascii()
                            or not keda_path_token.replace("-", "").replace("_", "").isalnum()):
        c.fail(("auth", "kedaPathTokenEnv"), "the token must be at least 24 letters, digits, '-' or '_' "
                                             "(it is part of a URL path)")
    store = c.typed(("store",), v.get("store", "sqlite:///var/lib/fnops/bridge.db"), str) or ""
    if not store.startswith(("sqlite:///", "postgresql://", "postgres://", "env:")):
        c.fail(("store",), f"'{_without_secrets(store)}' is not supported; use sqlite:///<path> (a volume that "
                           "survives restarts), or env:VAR naming a variable that holds a postgresql:// DSN")
    carried = _dsn_credentials(store) if store.startswith(("postgresql://", "postgres://")) else None
    if carried:
        c.fail(("store",), f"a DSN with {carried} does not belong in the config; use env:VAR (or a passfile)")
    if store.startswith("env:"):
        dsn = _env(c, ("store",), store[4:], required=True) or ""
        if dsn and not dsn.startswith(("postgresql://", "postgres://")):
            c.fail(("store",), f"{store[4:]} must hold a postgresql:// DSN")
        store = dsn or store
    default_dir = os.path.dirname(store[len("sqlite://"):]) if store.startswith("sqlite:///") else "/var/lib/fnops"
    data_dir = c.typed(("dataDir",), v.get("dataDir", default_dir), str) or default_dir
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
    s = c.mapping(("slack",), v.get("slack"), ("tokenEnv", "defaultChannel", "baseUrl", "allowedChannels"))
    slack = None
    if s:
        default = c.typed(("slack", "defaultChannel"), s.get("defaultChannel"), str)
        # A function's repo names its channel (notify.slack); only these may be used.
        allowed = c.string_list(("slack", "allowedChannels"), s.get("allowedChannels")) or ((default,) if default else ())
        slack = Slack(_env(c, ("slack", "tokenEnv"), s.get("tokenEnv"), required=True), default,
                      c.typed(("slack", "baseUrl"), s.get("baseUrl"), str), tuple(allowed))
        if not s.get("tokenEnv"):
            c.fail(("slack",), "'tokenEnv' is required")
    gh = c.mapping(("github",), v.get("github"), ("tokenEnv", "baseUrl", "allowedRepos", "minWriteInterval"))
    github = None
    if gh:
        org = (gitops.github_repo or _owner_of(gitops.repo or "") or "").split("/")[0]
        allowed = c.string_list(("github", "allowedRepos"), gh.get("allowedRepos")) or ((f"{org}/*",) if org else ())
        pace = c.parsed(("github", "minWriteInterval"), gh.get("minWriteInterval", "1s"), units.duration_seconds)
        github = GitHub(_env(c, ("github", "tokenEnv"), gh.get("tokenEnv"), required=True),
                        c.typed(("github", "baseUrl"), gh.get("baseUrl"), str), tuple(allowed),
                        1.0 if pace is None else pace)
        if not gh.get("tokenEnv"):
            c.fail(("github",), "'tokenEnv' is required")
    rb = c.mapping(("rollback",), v.get("rollback"), ("bakeTime", "alertNames", "alertNamespaces"))
    bake = c.parsed(("rollback", "bakeTime"), rb.get("bakeTime", "15m"), units.whole_seconds, 0, 7 * 86400)
    alert_names = c.string_list(("rollback", "alertNames"), rb.get("alertNames")) or SLO_ALERTS
    alert_namespaces = c.string_list(("rollback", "alertNamespaces"), rb.get("alertNamespaces"))
    a = c.mapping(("argocd",), v.get("argocd"), ("url", "application", "applicationNamespace", "namespace", "catchUp"))
    argocd_url = c.typed(("argocd", "url"), a.get("url"), str)
    if argocd_url and not argocd_url.startswith("https://") and not argocd_url.startswith("http://"):
        c.fail(("argocd", "url"), "must be an http(s) URL of the Argo CD UI")
    origins = _origins(c, a)
    d = c.mapping(("delivery",), v.get("delivery"), ("maxAttempts", "maxBackoff", "timeout", "lease"))
    delivery = Delivery(c.integer(("delivery", "maxAttempts"), d.get("maxAttempts", 12), 1, 1000) or 12,
                        c.parsed(("delivery", "maxBackoff"), d.get("maxBackoff", "5m"), units.whole_seconds, 1, 86400)
                        or 300,
                        c.parsed(("delivery", "timeout"), d.get("timeout", "15s"), units.whole_seconds, 1, 600) or 15,
                        # PostgreSQL: how long a replica's claim on a delivery lasts (renewed before each attempt)
                        c.parsed(("delivery", "lease"), d.get("lease", "2m"), units.whole_seconds, 2, 3600) or 120)
    r = c.mapping(("retention",), v.get("retention"), ("doneAfter", "maxPendingEvents"))
    retention = Retention(
        c.parsed(("retention", "doneAfter"), r.get("doneAfter", "168h"), units.whole_seconds, 60, 366 * 86400)
        or 7 * 86400,
        c.integer(("retention", "maxPendingEvents"), r.get("maxPendingEvents", 100_000), 10) or 100_000)
    h = c.mapping(("http",), v.get("http"), ("maxConnections", "headerTimeout", "bodyTimeout", "keepAlive"))
    http = Http(c.integer(("http", "maxConnections"), h.get("maxConnections", 512), 16, 60_000) or 512,
                c.parsed(("http", "headerTimeout"), h.get("headerTimeout", "10s"), units.whole_seconds, 1, 300) or 10,
                c.parsed(("http", "bodyTimeout"), h.get("bodyTimeout", "30s"), units.whole_seconds, 1, 600) or 30,
                c.parsed(("http", "keepAlive"), h.get("keepAlive", "5s"), units.whole_seconds, 1, 300) or 5)
    catch_up = _catch_up(c, a.get("catchUp"), retention.done_after)
    sc = c.mapping(("scaling",), v.get("scaling"), ("maxPerHour",))
    scaling = Scaling(c.integer(("scaling", "maxPerHour"), sc.get("maxPerHour", 12), 1, 3600) or 12, keda_path_token)
    c.raise_if_any()
    return Config(path, host, int(port), token, hmac_secret, store, max_body, gitops, slack, github,
                  Rollback(bake if bake is not None else 900, tuple(alert_names), tuple(alert_namespaces)),
                  tokens, argocd_url.rstrip("/") if argocd_url else None, delivery, retention, data_dir, origins, http,
                  catch_up, scaling)


def _catch_up(c: Checker, cu, keep_seconds: float) -> CatchUp | None:
    """argocd.catchUp: {kubernetes: {url, tokenFile | tokenEnv, caFile}, interval, maxAge}.
    An empty `kubernetes: {}` is the cluster the bridge runs in (its ServiceAccount)."""
    from .catchup import IN_CLUSTER

    if cu is None:
        return None
    w = ("argocd", "catchUp")
    m = c.mapping(w, cu, ("kubernetes", "interval", "maxAge"))
    k = c.mapping(w + ("kubernetes",), m.get("kubernetes"), ("url", "tokenFile", "tokenEnv", "caFile"))
    if "kubernetes" not in m:
        c.fail(w, "'kubernetes' is required: where Argo CD's Application objects are ({} for this cluster)")
    in_cluster = not k.get("url")
    url = c.typed(w + ("kubernetes", "url"), k.get("url"), str) or ""
    if url and not url.startswith("https://") and not url.split("://", 1)[-1].startswith(("127.0.0.1:", "[::1]:",
                                                                                          "localhost:")):
        c.fail(w + ("kubernetes", "url"), "must be an https:// URL (plain http only to a loopback address)")
    token_file = c.typed(w + ("kubernetes", "tokenFile"), k.get("tokenFile"), str)
    token = _env(c, w + ("kubernetes", "tokenEnv"), k.get("tokenEnv"), required=True)
    ca_file = c.typed(w + ("kubernetes", "caFile"), k.get("caFile"), str)
    if in_cluster:
        token_file, ca_file = token_file or f"{IN_CLUSTER}/token", ca_file or f"{IN_CLUSTER}/ca.crt"
    interval = c.parsed(w + ("interval",), m.get("interval", "5m"), units.whole_seconds, 30, 86400) or 300
    max_age = c.parsed(w + ("maxAge",), m.get("maxAge", "24h"), units.whole_seconds, 60, 366 * 86400) or 86400
    if max_age >= keep_seconds:
        c.fail(w + ("maxAge",), f"must be shorter than retention.doneAfter ({int(keep_seconds)}s): an event the "
                                "outbox has forgotten would be news again")
    return CatchUp(url or None, token_file, token, ca_file, interval, max_age)


def _dsn_credentials(dsn: str) -> str | None:
    """What secret a postgresql:// URL carries in itself: credentials in its userinfo, or a
    password parameter in its query string (libpq reads both). None if neither."""
    from urllib.parse import parse_qsl, urlsplit

    try:
        parts = urlsplit(dsn)
        userinfo = parts.netloc.rpartition("@")[0]
        params = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return "what may be credentials (it does not parse as a URL)"
    if userinfo:
        return "credentials"
    # libpq's password and sslpassword; any other spelling of one is refused too.
    if any("password" in k.lower() for k, _ in params):
        return "a password parameter"
    return None


def _without_secrets(url: str) -> str:
    """A store URL fit to print: its userinfo and any password parameter as ***."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    query = "&".join(f"{k}=***" if "password" in k.lower() else f"{k}={v}" if sep else k
                     for k, sep, v in (p.partition("=") for p in parts.query.split("&") if p))
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _origins(c: Checker, a: dict) -> Origins:
    """How the ApplicationSet names each function × environment (see bridge/origin.py)."""
    app = c.typed(("argocd", "application"), a.get("application", DEFAULT_APPLICATION), str) or DEFAULT_APPLICATION
    why = template_problem(app)
    if why:
        c.fail(("argocd", "application"), f"{why}: a template such as {DEFAULT_APPLICATION}")
    app_ns = (c.typed(("argocd", "applicationNamespace"), a.get("applicationNamespace", DEFAULT_APPLICATION_NAMESPACE),
                      str) or DEFAULT_APPLICATION_NAMESPACE)
    if not units.is_dns1123_label(app_ns):
        c.fail(("argocd", "applicationNamespace"), "must be a namespace name (a DNS label)")
    ns = a.get("namespace", DEFAULT_NAMESPACE)
    if isinstance(ns, dict):
        for env, name in ns.items():
            if not (isinstance(env, str) and units.is_dns1123_label(env)
                    and isinstance(name, str) and units.is_dns1123_label(name)):
                c.fail(("argocd", "namespace"), "must map environment names to namespace names (DNS labels)")
                break
    elif isinstance(ns, str):
        why = template_problem(ns)
        if why:
            c.fail(("argocd", "namespace"), f"{why}: a template such as {DEFAULT_NAMESPACE}, or a mapping "
                                            "environment: namespace")
    else:
        c.fail(("argocd", "namespace"), f"expected a template such as {DEFAULT_NAMESPACE}, or a mapping "
                                        "environment: namespace")
        ns = DEFAULT_NAMESPACE
    return Origins(app, app_ns, ns)


def _owner_of(url: str) -> str | None:
    """acme from https://github.com/acme/functions.git or git@github.com:acme/functions."""
    path = url.split("://", 1)[1].split("/", 1)[-1] if "://" in url else url.split(":", 1)[-1]
    parts = [p for p in path.split("/") if p]
    return parts[0] if len(parts) >= 2 else None


def check(path: str) -> list[Problem]:
    try:
        load(path)
    except SpecError as e:
        return e.problems
    return []
