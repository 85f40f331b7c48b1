"""function.yaml v1: defaults, per-environment overlays, and every check a cluster would
otherwise make later (see shared/reference/knative-keda-rules.md)."""

from __future__ import annotations

import os
from ..lazyre import LazyRe

from ..yamldoc import Doc
from . import units
from .units import shown
from .check import Checker
from .limits import MAX_ENV, MAX_ENV_FROM, MAX_ENVIRONMENTS, MAX_HOSTS, MAX_KEDA_SCALERS
from .platform import Platform
from .triggers import triggers as _triggers
from .domains import check_domain
from .imagetest import image_test
from .canary import canary_steps
from .model import (
    BURNS,
    DEPLOYERS,
    HPA_METRICS,
    KPA_METRICS,
    METRICS,
    ROLLBACK_MODES,
    RUNTIMES,
    SLO_DEFAULTS,
    VISIBILITIES,
    CronTrigger,
    Function,
    KafkaTrigger,
    Scale,
    Slo,
)

TOP_KEYS = (
    "name", "runtime", "handler", "image", "deployer", "env", "envFrom", "resources",
    "timeout", "concurrency", "http", "scale", "triggers", "slo", "traffic", "notify",
    "rollback", "approval", "environments", "test",
)
OVERLAY_KEYS = tuple(k for k in TOP_KEYS if k not in ("name", "environments"))
SCALE_KEYS = ("min", "max", "initial", "metric", "target", "window", "scaleDownDelay", "prometheus")
RESERVED_ENV = ("PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION")
# Longest traffic tag fnops renders ("candidate"): Knative builds `<tag>-<name>` hosts.
CANARY_TAG, STABLE_TAG = "candidate", "stable"
REVISION_HASH_LEN = 8
MAX_NAME = 63 - 1 - REVISION_HASH_LEN  # revision `<name>-<hash>` must fit a label
# ASCII classes throughout: \d and \w in a str pattern also match '٣', '３' or 'é'.
_HANDLER = LazyRe(r"[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*")
_ENV_NAME = LazyRe(r"[-._a-zA-Z][-._a-zA-Z0-9]*")


def environments_of(doc: Doc, folder: str) -> list[str]:
    """Environments this function knows: overlays plus pinned releases."""
    envs: dict = {}  # ordered and deduplicated in one pass, however many files releases/ holds
    overlays = doc.value.get("environments") if isinstance(doc.value, dict) else None
    if isinstance(overlays, dict):
        envs.update((str(k), None) for k in overlays)
    rel = os.path.join(folder, "releases")
    if os.path.isdir(rel):
        for f in sorted(os.listdir(rel)):
            # Only DNS-label names: a file name never becomes a path we open elsewhere.
            if f.endswith(".yaml") and units.is_dns1123_label(f[:-5]):
                envs.setdefault(f[:-5], None)
    return list(envs)


def merged_for(doc: Doc, env: str | None) -> Doc:
    """The document as seen by `env`: its overlay deep-merged over the top level.

    Mappings merge key by key; lists and scalars in the overlay replace. Positions follow
    the value, so an error in an overlaid field points at the overlay's line.
    """
    base = doc.value if isinstance(doc.value, dict) else {}
    overlay = None
    if env is not None:
        envs = base.get("environments")
        if isinstance(envs, dict):
            overlay = envs.get(env)
    marks, key_marks = dict(doc.marks), dict(doc.key_marks)
    value = {k: v for k, v in base.items() if k != "environments"}
    if isinstance(overlay, dict):
        prefix = ("environments", env)
        for src, dst in ((doc.marks, marks), (doc.key_marks, key_marks)):
            for p, m in src.items():
                if p[:2] == prefix and len(p) > 2:
                    dst[p[2:]] = m
        # check_overlays reports these two; merged, a renamed overlay would be reported twice
        value = _deep_merge(value, {k: v for k, v in overlay.items() if k not in ("name", "environments")})
    return Doc(doc.path, value, marks, key_marks)


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def check_overlays(doc: Doc) -> Checker:
    """Checks on the raw document that merging would hide."""
    c = Checker(doc)
    top = c.mapping((), doc.value, TOP_KEYS)
    envs = top.get("environments")
    if envs is not None:
        if not isinstance(envs, dict):
            c.fail(("environments",), "expected a mapping of environment name to overrides")
        elif c.at_most(("environments",), envs, MAX_ENVIRONMENTS, "environments"):
            for env, over in envs.items():
                p = ("environments", env)
                if not units.is_dns1123_label(env):
                    c.fail(p, "environment names are lowercase DNS labels (a-z, 0-9, '-')", key=True)
                if over is not None and not isinstance(over, dict):
                    c.fail(p, "expected a mapping of overrides")
                elif isinstance(over, dict):
                    for k in ("name", "environments"):
                        if k in over:
                            c.fail(p + (k,), f"'{shown(k)}' cannot be overridden per environment", key=True)
    return c


def resolve(doc: Doc, folder: str, env: str | None, platform: Platform = Platform(),
            environments: list | None = None) -> tuple[Function | None, Checker]:
    """Validate the function as `env` sees it on `platform`. Returns (Function or None, checker).
    `environments`: environments_of(doc, folder), when the caller has it already."""
    c = check_overlays(doc)
    if doc.value is None:
        c.fail((), "file is empty; at least 'runtime' is required")
        return None, c
    if not isinstance(doc.value, dict):
        return None, c
    m = merged_for(doc, env)
    c.doc = m
    v = m.value
    name = _name(c, v, os.path.basename(os.path.abspath(folder)))

    runtime = v.get("runtime")
    if runtime is None:
        c.fail((), "'runtime' is required: one of " + ", ".join(RUNTIMES))
    runtime = c.choice(("runtime",), runtime, RUNTIMES)
    handler = c.typed(("handler",), v.get("handler", "handler:handle"), str)
    if handler and not _HANDLER.fullmatch(handler):
        c.fail(("handler",), f"'{shown(handler)}' is not module:function (e.g. handler:handle)")
    image = c.typed(("image",), v.get("image"), str)
    if image is not None:
        from ..types import Repository

        try:
            Repository(image)
        except ValueError as e:
            c.fail(("image",), f"{e}; a repository only, without tag or digest (releases pin those)")
            image = None
    if runtime == "image" and image is None and "image" not in v:
        c.fail(("runtime",), "runtime 'image' needs 'image': the repository to deploy from")
    deployer = c.choice(("deployer",), v.get("deployer", "knative"), DEPLOYERS) or "knative"

    env_pairs = _env(c, v.get("env"))
    secrets, config_maps = _env_from(c, v.get("envFrom"), name, platform)
    requests, limits = _resources(c, v.get("resources"))
    timeout = c.parsed(("timeout",), v.get("timeout"), units.whole_seconds, 1, 600)
    concurrency = c.integer(("concurrency",), v.get("concurrency"), 0, 1000)
    http = c.mapping(("http",), v.get("http"), ("visibility", "hosts", "domain"))
    visibility = c.choice(("http", "visibility"), http.get("visibility", "public"), VISIBILITIES) or "public"
    hosts = c.string_list(("http", "hosts"), http.get("hosts"), most=MAX_HOSTS, what="hosts")
    if hosts and deployer != "keda":
        c.fail(("http", "hosts"), "only used with deployer: keda (Knative assigns hosts itself)")
    for i, host in enumerate(hosts):
        _check_host(c, ("http", "hosts", i), host, platform.keda_hosts)
    domain = check_domain(c, http.get("domain"), deployer=deployer, visibility=visibility, settings=platform.domains)
    scale = _scale(c, v.get("scale"), deployer, visibility, platform)
    triggers = _triggers(c, v.get("triggers"), deployer, name or "fn", env)
    slo = _slo(c, v.get("slo"), deployer, platform)
    traffic = c.mapping(("traffic",), v.get("traffic"), ("canary", "steps", "bakeTime"))
    canary = c.integer(("traffic", "canary"), traffic.get("canary"), 1, 99)
    canary, steps, bake_seconds = canary_steps(c, traffic, canary)
    if canary is not None and deployer != "knative":
        c.fail(("traffic", "canary"), "traffic splitting needs deployer: knative")
    if canary is not None and name and len(CANARY_TAG) + 1 + len(name) > 63:
        c.fail(("traffic", "canary"), f"with a canary the tag host '{CANARY_TAG}-{name}' is longer than 63; shorten the name to ≤ {62 - len(CANARY_TAG)}")
    notify = c.mapping(("notify",), v.get("notify"), ("slack",))
    slack = c.typed(("notify", "slack"), notify.get("slack"), str)
    rollback = c.choice(("rollback",), v.get("rollback", "off"), ROLLBACK_MODES) or "off"
    # `approval: required` makes promotions into this environment a pull request by default.
    approval = c.choice(("approval",), v.get("approval", "none"), ("none", "required")) or "none"
    test = image_test(c, v.get("test"), runtime)  # what `fnops ship` runs in the built image
    if deployer == "keda" and scale and scale.metric in KPA_METRICS and visibility == "none":
        c.fail(("scale", "metric"), f"'{scale.metric}' scaling needs HTTP; with http.visibility none scale on triggers or cpu|memory|prometheus")
    if deployer == "keda" and scale and scale.min == 0 and not any(isinstance(t, (KafkaTrigger, CronTrigger)) for t in triggers):
        if scale.metric in ("cpu", "memory") or (visibility == "none" and scale.metric != "prometheus"):
            c.fail(("scale", "min"), "KEDA cannot scale to zero on cpu/memory alone; add a kafka/cron trigger, use metric prometheus, or set scale.min ≥ 1")
    if deployer == "keda" and scale and scale.metric in ("cpu", "memory") \
            and not any(k == scale.metric and q != "0" for k, q in requests + limits):
        m = scale.metric
        c.fail(("scale", "metric"), f"'{m}' with deployer keda needs resources.{m}: KEDA's webhook refuses a {m} "
               f"trigger on a container without a {m} request or limit")
    if deployer == "knative" and visibility == "none" and not triggers:
        c.fail(("http", "visibility"), "'none' makes the function event-only, but it has no triggers")

    if deployer == "keda":
        windows = sum(len(t.topics) if isinstance(t, KafkaTrigger) else 1 for t in triggers)
        if windows > MAX_KEDA_SCALERS:
            c.fail(("triggers",), f"with deployer keda every kafka topic and cron window is a trigger of the one "
                   f"ScaledObject: {windows} here, at most {MAX_KEDA_SCALERS}")

    if c.problems or runtime is None or name is None:
        return None, c
    envs = tuple(environments_of(doc, folder) if environments is None else environments)
    return (
        Function(
            name=name, runtime=runtime, folder=folder, environment=env, handler=handler or "handler:handle",
            image=image, deployer=deployer, env=env_pairs, secrets=secrets, config_maps=config_maps,
            requests=requests, limits=limits, timeout=300 if timeout is None else timeout,
            concurrency=concurrency or 0, visibility=visibility, hosts=hosts, scale=scale, triggers=triggers,
            slo=slo, canary=canary, notify_slack=slack, rollback=rollback, approval=approval, environments=envs,
            test=test, canary_steps=steps, bake_seconds=bake_seconds, domain=domain,
        ),
        c,
    )


def _name(c: Checker, v: dict, folder_name: str) -> str | None:
    """The folder's name. Every object is named after it, so `name` may only repeat it: a
    folder must not render (and so take over) another function's objects."""
    where = ("name",) if "name" in v else ()
    if not units.is_dns1035(folder_name, 253):
        c.fail(where, f"'{shown(folder_name)}' is not a valid function name: lowercase letters, digits and '-', "
               "starting with a letter (it is the folder's name; rename the folder)")
        return None
    if len(folder_name) > MAX_NAME:
        c.fail(where, f"'{shown(folder_name)}' is {len(folder_name)} characters; at most {MAX_NAME} so that revision "
               f"names '<name>-<{REVISION_HASH_LEN} hex>' fit 63 (it is the folder's name; rename the folder)")
        return None
    if "name" in v and v["name"] != folder_name:
        c.fail(where, f"'{shown(v['name'])}' is not this folder's name; objects are named after the folder, so the "
               f"only valid value is '{folder_name}' (or leave 'name' out)")
        return None
    return folder_name


def _env(c: Checker, value) -> tuple:
    env = c.mapping(("env",), value, ()) if not isinstance(value, dict) else value
    if not c.at_most(("env",), env, MAX_ENV, "variables"):
        return ()
    out = []
    for k, val in env.items():
        p = ("env", k)
        if not isinstance(k, str) or not _ENV_NAME.fullmatch(k):
            c.fail(p, "environment variable names are letters, digits, '_', '-', '.' and must not start with a digit", key=True)
            continue
        if k in RESERVED_ENV:
            c.fail(p, f"'{shown(k)}' is reserved by Knative (reserved: {', '.join(RESERVED_ENV)})", key=True)
            continue
        if isinstance(val, bool) or val is None or isinstance(val, (dict, list)):
            c.fail(p, f"value must be a string; quote it, e.g. {shown(k)}: \"{'true' if val is True else 'false' if val is False else ''}\"")
            continue
        out.append((k, val if isinstance(val, str) else units.format_number(val)))
    return tuple(out)


def _env_from(c: Checker, value, name: str | None, platform: Platform):
    ef = c.mapping(("envFrom",), value, ("secrets", "configMaps"))
    out = []
    for key in ("secrets", "configMaps"):
        names = c.string_list(("envFrom", key), ef.get(key), most=MAX_ENV_FROM, what="names")
        for i, n in enumerate(names):
            if not units.is_dns1123_subdomain(n):
                c.fail(("envFrom", key, i), f"'{shown(n)}' is not a valid object name (lowercase DNS subdomain)")
        out.append(names)
    if platform.secrets and name:
        from fnmatch import fnmatchcase  # only where the platform keeps an allow-list

        allowed = platform.secret_patterns(name)
        for i, n in enumerate(out[0]):
            if not any(fnmatchcase(n, pattern) for pattern in allowed):
                c.fail(("envFrom", "secrets", i), f"'{shown(n)}' is not a secret this platform lets functions "
                       f"name (FNOPS_ALLOWED_SECRETS: {shown(', '.join(allowed), 120)})")
    return out[0], out[1]


def _check_host(c: Checker, p, host: str, allowed: str) -> None:
    """KEDA routes by these hosts: a wildcard would take other functions' traffic, so it
    needs the platform's consent (FNOPS_KEDA_HOSTS)."""
    if units.is_dns1123_subdomain(host):
        return
    if host == "*":
        if allowed != "catch-all":
            c.fail(p, "'*' would route every host to this function; lowercase DNS names only (e.g. fn.example.com) "
                   "unless the platform sets FNOPS_KEDA_HOSTS=catch-all")
    elif host.startswith("*.") and units.is_dns1123_subdomain(host[2:]):
        if allowed == "dns":
            c.fail(p, f"'{shown(host)}' is a wildcard; lowercase DNS names only (e.g. fn.example.com) unless the "
                   "platform sets FNOPS_KEDA_HOSTS=wildcard")
    else:
        c.fail(p, f"'{shown(host)}' is not a host name: lowercase letters, digits, '-' and '.' (e.g. fn.example.com), "
               "at most 253 characters")


def _resources(c: Checker, value):
    r = c.mapping(("resources",), value, ("cpu", "memory", "limits"))
    requests = []
    for k in ("cpu", "memory"):
        q = c.parsed(("resources", k), r.get(k), units.quantity)
        if q is not None:
            requests.append((k, q))
    lim = c.mapping(("resources", "limits"), r.get("limits"), ("cpu", "memory"))
    limits = []
    for k in ("cpu", "memory"):
        q = c.parsed(("resources", "limits", k), lim.get(k), units.quantity)
        if q is not None:
            limits.append((k, q))
    return tuple(requests), tuple(limits)


def _scale(c: Checker, value, deployer: str, visibility: str, platform: Platform) -> Scale:
    s = c.mapping(("scale",), value, SCALE_KEYS)
    p = ("scale",)
    default_metric = "concurrency" if (deployer == "knative" or visibility != "none") else None
    lo = c.integer(p + ("min",), s.get("min", 0), 0) or 0
    hi = c.integer(p + ("max",), s.get("max", 0), 0) or 0
    if hi and lo > hi:
        c.fail(p + ("max",), f"max ({hi}) is below min ({lo}); set max ≥ min, or 0 for unlimited")
    initial = c.integer(p + ("initial",), s.get("initial"), 1)
    if initial is not None and hi and initial > hi:
        c.fail(p + ("initial",), f"initial ({initial}) is above max ({hi})")
    metric = c.choice(p + ("metric",), s.get("metric", default_metric), METRICS)
    memory_target = None
    if metric == "memory" and isinstance(s.get("target"), str):
        memory_target, target = _memory_target(c, p + ("target",), s["target"], deployer)
    else:
        target = c.number(p + ("target",), s.get("target"), 0.01)
    if metric == "cpu" and target is not None and not 1 <= target <= 100:
        c.fail(p + ("target",), f"{target} is out of range; cpu target is a utilization percent 1–100")
    elif target is not None and target != int(target):
        _whole_target(c, p + ("target",), target, metric, deployer)
    window = c.parsed(p + ("window",), s.get("window"), units.whole_seconds, 6, 3600)
    delay = c.parsed(p + ("scaleDownDelay",), s.get("scaleDownDelay"), units.whole_seconds, 0, 3600)
    prom = c.mapping(p + ("prometheus",), s.get("prometheus"), ("query", "serverAddress"))
    query = c.typed(p + ("prometheus", "query"), prom.get("query"), str)
    address = c.typed(p + ("prometheus", "serverAddress"), prom.get("serverAddress"), str)
    if metric == "prometheus":
        if not query:
            c.fail(p + ("prometheus", "query"), "is required when metric is prometheus")
        address = _prometheus_server(c, p + ("prometheus", "serverAddress"), address, platform)
        if target is None:
            c.fail(p + ("target",), "is required when metric is prometheus: the per-pod value of the query to aim for")
    elif prom:
        c.fail(p + ("prometheus",), f"only used with metric: prometheus (metric is {metric})")
    if deployer == "keda" and visibility != "none" and metric in KPA_METRICS and target is not None \
            and (target < 1 or target != int(target)):
        c.fail(p + ("target",), f"{target} is not a whole number ≥ 1; KEDA's HTTP add-on counts whole requests")
    if deployer == "knative" and metric in HPA_METRICS:
        if lo < 1:
            c.fail(p + ("min",), f"metric '{metric}' uses the HPA class (autoscaler-keda), which cannot scale from zero; set scale.min ≥ 1 or use metric concurrency|rps")
        if window is not None:
            c.fail(p + ("window",), f"window applies to KPA metrics (concurrency, rps), not '{metric}'")
    return Scale(min=lo, max=hi, metric=metric, target=target, window=window, scale_down_delay=delay,
                 initial=initial, prometheus_query=query, prometheus_address=address,
                 min_set="min" in s, max_set="max" in s, memory_target=memory_target)


def _whole_target(c: Checker, p, target: float, metric: str | None, deployer: str) -> None:
    """Where upstream truncates a fractional target (upstream-review F10, F7)."""
    if deployer == "knative" and metric == "prometheus":
        c.fail(p, f"{target} is not a whole number; autoscaler-keda makes the HPA threshold an integer ({target} "
               "would become " + str(int(target)) + "): scale the query so its target is whole (e.g. multiply both by 10)")
    elif deployer == "knative" and metric == "memory":
        c.fail(p, f"{target} is not a whole number; with the HPA class a memory target is MiB per pod and "
               "autoscaler-keda drops the fraction: write whole MiB or a quantity such as 512Mi")
    elif deployer == "keda" and metric in ("cpu", "memory"):
        c.fail(p, f"{target} is not a whole number; KEDA's {metric} scaler takes a whole utilization percent"
               + (" (or a per-pod quantity such as 512Mi)" if metric == "memory" else ""))


def _memory_target(c: Checker, p, text: str, deployer: str):
    """`target: 512Mi` with metric memory: (canonical quantity for KEDA's AverageValue, None)
    under deployer keda; (None, MiB) for the HPA class, which autoscaler-keda reads as MiB."""
    try:
        canonical, nanos = units.quantity_parts(text)
    except ValueError as e:
        c.fail(p, f"{e}; a memory target is a utilization percent or a per-pod quantity such as 512Mi")
        return None, None
    if nanos <= 0:
        c.fail(p, f"'{shown(text)}' must be more than 0")
        return None, None
    if deployer == "keda":
        return canonical, None
    mib, rest = divmod(nanos, (1 << 20) * 10**9)
    if rest:
        c.fail(p, f"'{shown(text)}' is not a whole number of MiB; autoscaler-keda takes a memory target in whole MiB "
               f"(e.g. {max(1, mib)}Mi)")
        return None, None
    return None, float(mib)


def _prometheus_server(c: Checker, p, address, platform: Platform):
    """The address KEDA will query: the function's, within the platform's list, or the
    platform's default."""
    if address is None:
        if platform.prometheus_default is None:
            c.fail(p, "is required when metric is prometheus (e.g. http://prometheus.monitoring:9090), unless the "
                   "platform sets a default (FNOPS_PROMETHEUS_SERVER)")
        return platform.prometheus_default
    if c.parsed(p, address, units.http_url) is None:
        return None
    allowed = platform.prometheus_allowed
    if allowed and address not in allowed:
        c.fail(p, f"'{shown(address)}' is not a Prometheus this platform allows; valid: "
               f"{shown(', '.join(allowed), 200)} (or leave serverAddress out for the default)")
        return None
    return address


def _slo(c: Checker, value, deployer: str, platform: Platform):
    if value is None:
        return None
    p = ("slo",)
    s = c.mapping(p, value, ("latencyP95", "errorRate", "for", "minRate"))
    lat = c.parsed(p + ("latencyP95",), s.get("latencyP95"), units.duration_seconds)
    if lat is not None and lat <= 0:
        c.fail(p + ("latencyP95",), "must be greater than 0")
    bounds, unit = platform.latency_buckets
    if lat is not None and lat > bounds[-1] * unit:
        top = units.format_number(round(bounds[-1] * unit, 6))
        c.fail(p + ("latencyP95",), f"at most {top}s: the queue-proxy's latency histogram "
               f"(FNOPS_KNATIVE_METRICS={platform.knative_metrics}) has no bucket above that")
    err = c.parsed(p + ("errorRate",), s.get("errorRate"), units.percent)
    fast = BURNS[0][3]
    if err is not None and err * fast > 100:
        c.fail(p + ("errorRate",), f"at most {int(10000 / fast) / 100}%: above that even a function failing every "
               f"request burns the budget slower than {units.format_number(fast)}×, so the fast-burn alert "
               "(the one that rolls back) could never fire")
    for_ = c.parsed(p + ("for",), s.get("for", SLO_DEFAULTS["for"]), units.prom_duration)
    min_rate = c.number(p + ("minRate",), s.get("minRate", SLO_DEFAULTS["minRate"]), 0, 100_000)
    if "latencyP95" not in s and "errorRate" not in s:
        c.fail(p, "set latencyP95 and/or errorRate")
    if deployer != "knative":
        c.fail(p, "SLO alerts use Knative queue-proxy metrics and need deployer: knative")
    return Slo(lat, err, for_ or SLO_DEFAULTS["for"], SLO_DEFAULTS["minRate"] if min_rate is None else min_rate)
