"""function.yaml `triggers`: cron, kafka and event, checked against what Knative Eventing,
eventing-kafka-broker and KEDA accept (shared/reference/upstream-review.md F4, F6, F7, F15)."""

from __future__ import annotations

import json

from ..lazyre import LazyRe
from . import cron, units
from .check import Checker
from .limits import (
    MAX_CONSUMER_GROUP,
    MAX_CRON,
    MAX_FILTER,
    MAX_HOSTPORT,
    MAX_KAFKA_SERVERS,
    MAX_KAFKA_TOPICS,
    MAX_TOPIC,
    MAX_TRIGGERS,
)
from .model import CronTrigger, Delivery, EventTrigger, KafkaTrigger
from .units import shown

_CE_ATTR = LazyRe(r"[a-z0-9]{1,20}")
_HOSTPORT = LazyRe(r"[A-Za-z0-9]([-.A-Za-z0-9]*[A-Za-z0-9])?:[0-9]{1,5}")  # a DNS name or IPv4, a port
_TOPIC = LazyRe(r"[A-Za-z0-9._-]+")  # Kafka's legal topic characters
DELIVERY_KEYS = ("retry", "backoffPolicy", "backoffDelay", "deadLetterSink")
MAX_RETRY = 100
MAX_BACKOFF = 3600  # seconds; an exponential backoff doubles it on every retry


def triggers(c: Checker, value, deployer: str, name: str, env: str | None) -> tuple:
    if value is None:
        return ()
    if not isinstance(value, list):
        c.fail(("triggers",), "expected a list of triggers (each one of cron, kafka, event)")
        return ()
    if not c.at_most(("triggers",), value, MAX_TRIGGERS, "triggers"):
        return ()
    out = []
    kafkas = 0
    for i, t in enumerate(value):
        p = ("triggers", i)
        if not isinstance(t, dict) or len(t) != 1:
            c.fail(p, "each trigger is a mapping with exactly one key: cron, kafka or event")
            continue
        (kind, body), = t.items()
        c.mapping(p, t, ("cron", "kafka", "event"))
        if kind == "cron":
            out.append(_cron(c, p + ("cron",), body, deployer))
        elif kind == "kafka":
            kafkas += 1
            out.append(_kafka(c, p + ("kafka",), body, name, env, kafkas))
        elif kind == "event":
            if deployer != "knative":
                c.fail(p + ("event",), "event triggers deliver through a Knative Broker and need deployer: knative", key=True)
            out.append(_event(c, p + ("event",), body))
    return tuple(x for x in out if x is not None)


def _cron(c: Checker, p, body, deployer: str):
    keys = ("schedule", "timezone", "data") if deployer == "knative" else ("start", "end", "timezone", "desiredReplicas")
    if isinstance(body, dict) and "delivery" in body:
        c.fail(p + ("delivery",), "a PingSource has no delivery options in Knative Eventing (no retries, no dead "
               "letter sink); set delivery on kafka and event triggers only", key=True)
        body = {k: v for k, v in body.items() if k != "delivery"}
    b = c.mapping(p, body, keys)
    tz = c.typed(p + ("timezone",), b.get("timezone"), str)
    if tz is not None:
        _check_timezone(c, p + ("timezone",), tz)
    if deployer == "knative":
        sched = c.typed(p + ("schedule",), b.get("schedule"), str)
        if sched is None and "schedule" not in b:
            c.fail(p, "'schedule' is required (cron syntax, e.g. \"*/5 * * * *\")")
        elif sched is not None:
            _check_cron(c, p + ("schedule",), sched, cron.pingsource_error)
        text, content_type = _ping_data(c, p + ("data",), b.get("data"))
        return CronTrigger(schedule=sched, timezone=tz, data=text, content_type=content_type)
    # KEDA's cron scaler is a time window, not a job trigger.
    start = c.typed(p + ("start",), b.get("start"), str)
    end = c.typed(p + ("end",), b.get("end"), str)
    for k, val in (("start", start), ("end", end)):
        if val is None:
            c.fail(p, f"'{k}' is required with deployer keda (KEDA's cron scaler keeps replicas up between start and end)")
        else:
            _check_cron(c, p + (k,), val, cron.keda_error)
    if start is not None and start == end:
        c.fail(p + ("end",), f"'{shown(end)}' is the same as start; KEDA's cron scaler refuses a window that starts "
               "and ends at the same time (set end to when replicas may go down again)")
    if tz is None:
        c.fail(p, "'timezone' is required with deployer keda (e.g. Europe/Berlin)")
    desired = c.integer(p + ("desiredReplicas",), b.get("desiredReplicas", 1), 1)
    return CronTrigger(start=start, end=end, timezone=tz, desired_replicas=desired)


def _ping_data(c: Checker, p, data):
    """The PingSource's data and contentType. Eventing checks application/json data by
    decoding it into a JSON object, so only a mapping goes as JSON; a string goes as text."""
    if data is None or data == "":
        return None, None
    if isinstance(data, dict):
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False), "application/json"
    if isinstance(data, str):
        return data, "text/plain"
    c.fail(p, "a PingSource sends a mapping as JSON or a string as text/plain; Knative refuses any other JSON "
           "(a list, number or boolean) as application/json: wrap it in a mapping (e.g. data: {items: [1, 2]}) "
           "or quote it to send it as text")
    return None, None


def _check_cron(c: Checker, p, text: str, error) -> None:
    if len(text) > MAX_CRON:
        c.fail(p, f"is {len(text)} characters; a cron schedule is at most {MAX_CRON}")
        return
    why = error(text)
    if why:
        c.fail(p, why)


def _check_timezone(c: Checker, p, tz: str) -> None:
    import zoneinfo  # only when a timezone is written

    # IANA names are short ASCII paths; anything else never reaches zoneinfo, which walks
    # the name as a file path (a long one recursed until the interpreter gave up).
    if len(tz) > 64 or not all(ch.isascii() and (ch.isalnum() or ch in "/_+-") for ch in tz) or ".." in tz:
        c.fail(p, f"'{shown(tz)}' is not an IANA time zone (e.g. Europe/Berlin, Asia/Seoul, UTC)")
        return
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        c.fail(p, f"'{shown(tz)}' is not an IANA time zone (e.g. Europe/Berlin, Asia/Seoul, UTC)")


def default_consumer_group(name: str, env: str | None, ordinal: int) -> str:
    """`<fn>-<env>` for the first kafka trigger, `<fn>-<env>-<n>` for the n-th: the same
    ordinal as the KafkaSource's name (`<fn>-kafka`, `<fn>-kafka-<n>`). A KafkaSource's
    consumerGroup is immutable, so it must not move when other kinds of trigger are
    added or reordered."""
    group = f"{name}-{env}" if env else name
    return group + (f"-{ordinal}" if ordinal > 1 else "")


def _kafka(c: Checker, p, body, name: str, env: str | None, ordinal: int):
    keys = ("bootstrapServers", "topics", "consumerGroup", "lagThreshold", "minConsumers", "maxConsumers",
            "initialOffset", "delivery")
    b = c.mapping(p, body, keys)
    servers = c.string_list(p + ("bootstrapServers",), b.get("bootstrapServers"), non_empty=True,
                            most=MAX_KAFKA_SERVERS, what="servers")
    for i, s in enumerate(servers):
        if len(s) > MAX_HOSTPORT or not _HOSTPORT.fullmatch(s) or not 1 <= int(s.rpartition(":")[2]) <= 65535:
            c.fail(p + ("bootstrapServers", i), f"'{shown(s)}' is not host:port (a DNS name or IPv4 address, a port 1–65535)")
    topics = c.string_list(p + ("topics",), b.get("topics"), non_empty=True, most=MAX_KAFKA_TOPICS, what="topics")
    for i, t in enumerate(topics):
        if len(t) > MAX_TOPIC or not _TOPIC.fullmatch(t):
            c.fail(p + ("topics", i), f"'{shown(t)}' is not a Kafka topic name (letters, digits, '.', '_', '-'; "
                   f"at most {MAX_TOPIC} characters)")
    default_group = default_consumer_group(name, env, ordinal)
    group = c.typed(p + ("consumerGroup",), b.get("consumerGroup", default_group), str)
    if group is not None and (len(group) > MAX_CONSUMER_GROUP or not group.isascii() or not group.isprintable()
                              or " " in group):
        c.fail(p + ("consumerGroup",), f"'{shown(group)}' is not a consumer group id (printable ASCII without "
               f"spaces, at most {MAX_CONSUMER_GROUP} characters)")
        group = None
    lag = c.integer(p + ("lagThreshold",), b.get("lagThreshold"), 1)
    lo = c.integer(p + ("minConsumers",), b.get("minConsumers"), 0)
    hi = c.integer(p + ("maxConsumers",), b.get("maxConsumers"), 1)
    if lo is not None and hi is not None and lo > hi:
        c.fail(p + ("maxConsumers",), f"maxConsumers ({hi}) is below minConsumers ({lo})")
    if (lo is not None or hi is not None) and lag is None:
        c.fail(p + ("lagThreshold",), "is required when minConsumers/maxConsumers are set (consumers scale on lag)")
    offset = c.choice(p + ("initialOffset",), b.get("initialOffset"), ("earliest", "latest"))
    delivery = _delivery(c, p + ("delivery",), b.get("delivery"))
    return KafkaTrigger(servers, topics, group or default_group, lag, lo, hi, offset, delivery)


def _event(c: Checker, p, body):
    b = c.mapping(p, body, ("broker", "filter", "delivery"))
    broker = c.typed(p + ("broker",), b.get("broker", "default"), str) or "default"
    if not units.is_dns1123_label(broker):  # also a label value on the Trigger
        c.fail(p + ("broker",), f"'{shown(broker)}' is not a Broker name (lowercase DNS label, at most 63 characters)")
    flt = b.get("filter")
    pairs = []
    if flt is not None and not isinstance(flt, dict):
        c.fail(p + ("filter",), "expected a mapping of CloudEvents attribute to exact value")
    elif flt is not None and not c.at_most(p + ("filter",), flt, MAX_FILTER, "attributes"):
        flt = None
    for k, val in (flt or {}).items() if isinstance(flt, dict) else ():
        if not _CE_ATTR.fullmatch(str(k)):
            c.fail(p + ("filter", k), "CloudEvents attribute names are 1–20 lowercase letters or digits", key=True)
        elif not isinstance(val, str):
            c.fail(p + ("filter", k), "filter values are strings; quote it")
        else:
            pairs.append((k, val))
    return EventTrigger(broker, tuple(pairs), _delivery(c, p + ("delivery",), b.get("delivery")))


def _delivery(c: Checker, p, value) -> Delivery | None:
    """Eventing's DeliverySpec, in function.yaml's units: backoffDelay a duration (1s, 500ms),
    deadLetterSink an http(s) URL or the name of a Knative Service in the same namespace."""
    if value is None:
        return None
    d = c.mapping(p, value, DELIVERY_KEYS)
    if not d:
        return None
    retry = c.integer(p + ("retry",), d.get("retry"), 0, MAX_RETRY)
    policy = c.choice(p + ("backoffPolicy",), d.get("backoffPolicy"), ("exponential", "linear"))
    delay = c.parsed(p + ("backoffDelay",), d.get("backoffDelay"), units.duration_seconds)
    if delay is not None and not 0.001 <= delay <= MAX_BACKOFF:
        c.fail(p + ("backoffDelay",), f"'{shown(d['backoffDelay'])}' is out of range; allowed 1ms–1h")
        delay = None
    sink = c.typed(p + ("deadLetterSink",), d.get("deadLetterSink"), str)
    if sink is not None and not (sink.startswith(("http://", "https://")) or units.is_dns1035(sink)):
        c.fail(p + ("deadLetterSink",), f"'{shown(sink)}' is neither an http(s) URL nor the name of a Knative Service "
               "in this namespace")
        sink = None
    if sink is not None and sink.startswith(("http://", "https://")):
        sink = c.parsed(p + ("deadLetterSink",), sink, units.http_url)
    iso = None if delay is None else "PT" + units.format_number(round(delay, 3)) + "S"
    return Delivery(retry, policy, iso, sink)
