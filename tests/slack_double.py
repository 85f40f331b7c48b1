"""A local Slack Web API that checks every call against shared/schemas/apis
(slack-ref-method-*.json: method, known arguments, required arguments, token) and answers
as Slack does: HTTP 200 with ok:false and an error code, 429 + Retry-After when asked to,
5xx on demand. Block Kit limits are enforced (≤ 50 blocks, header ≤ 150, section text ≤ 3000,
≤ 10 fields of ≤ 2000), and `text` is required alongside blocks (the notification fallback).

Each posted or updated message is also read as Slack's documented parsing would read it
(`effects`): which special mentions it would notify (`<!here>`, and a plain `@here` where
Slack parses names) and which URLs it would link (marked-up `<url|…>`, and bare URLs or
domains where Slack auto-links). Top-level `text`: chat.postMessage links bare URLs unless
`parse=none` and parses names with `link_names` or `parse=full`; chat.update's default parse
mode is `client` (both). A mrkdwn text object links and parses names unless `verbatim`.

Message metadata as the docs copies describe it (SOURCES.md §3; the 2020 OpenAPI has none):
chat.postMessage/chat.update take `metadata`, a JSON object (or its JSON string) with a string
`event_type` and an object `event_payload` whose values are not objects nor arrays of objects —
otherwise invalid_metadata_format / invalid_metadata_schema, as Slack answers (and a
violation: fnops must never send one); chat.update without it keeps the old metadata, with `{}`
removes it. conversations.history takes a channel ID (a name is channel_not_found), returns
top-level messages newest first between `oldest` and `latest` (exclusive unless `inclusive`),
`limit` (default 100, at most 999) a page with `has_more` and `response_metadata.next_cursor`,
and each message's metadata: its `event_type` only, the payload too with
`include_all_metadata`. It needs channels:history (groups:history for a G… channel) among
`scopes`, else missing_scope with `needed`/`provided`. Message ts are real epoch times, so
`oldest` bounds work. `method_faults[method]` answers the next calls of one method only;
`hang` holds every chat.* answer that many seconds (work in flight when a test strikes).
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

import schemas
from loopback import LoopbackServer

METHODS = ("chat.postMessage", "chat.update", "auth.test", "conversations.info", "conversations.history")
SCOPES = ("chat:write", "channels:history", "groups:history")
CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,}")


SPECIAL = re.compile(r"<!(here|channel|everyone|group)(?:\|[^>]*)?>")
MARKED_LINK = re.compile(r"<((?:https?|mailto):[^|>]*)(?:\|[^>]*)?>")
MARKUP = re.compile(r"<[^>]*>")
PLAIN_MENTION = re.compile(r"(?<![\w@])@(here|channel|everyone|group)\b", re.IGNORECASE)
BARE_URL = re.compile(r"(?i)\b(?:[a-z][a-z0-9+.-]*://[^\s<>|]+|(?:[a-z0-9-]+\.)+[a-z]{2,}\b(?:/[^\s<>|]*)?)")
PARSE_MODES = {"chat.postMessage": ("none", "full", "client"), "chat.update": ("none", "full")}


def slack_reads(text: str, *, names: bool, links: bool) -> tuple[set, set]:
    """(special mentions notified, URLs linked) of one text as Slack parses it."""
    mentions = {m.group(1).lower() for m in SPECIAL.finditer(text)}
    linked = {m.group(1) for m in MARKED_LINK.finditer(text)}
    plain = MARKUP.sub(" ", text)
    if names:
        mentions |= {m.group(1).lower() for m in PLAIN_MENTION.finditer(plain)}
    if links:
        linked |= {m.group(0) for m in BARE_URL.finditer(plain)}
    return mentions, linked


def message_effects(method: str, args: dict, blocks) -> tuple[set, set]:
    parse = args.get("parse") or ("client" if method == "chat.update" else None)
    link_names = args.get("link_names") in (True, 1, "1", "true")
    mentions, linked = slack_reads(args.get("text") or "", names=link_names or parse in ("full", "client"),
                                   links=parse != "none")
    for b in blocks or []:
        objs = [b.get("text")] + list(b.get("fields") or []) + list(b.get("elements") or [])
        for o in objs:
            if isinstance(o, dict) and o.get("type") == "mrkdwn":
                raw = o.get("verbatim") is not True
                m, ln = slack_reads(o.get("text", ""), names=raw, links=raw)
                mentions |= m
                linked |= ln
    return mentions, linked


def _spec(method):
    with open(os.path.join(schemas.schema_dir(), "apis", f"slack-ref-method-{method}.json")) as f:
        return json.load(f)


def metadata_problem(value) -> str | None:
    """None if `value` is message metadata Slack takes, else the error code it answers."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return "invalid_metadata_format"
    if not isinstance(value, dict):
        return "invalid_metadata_format"
    if value == {}:
        return None  # chat.update: removes the metadata
    if set(value) - {"event_type", "event_payload"} or not isinstance(value.get("event_type"), str) \
            or not value["event_type"] or not isinstance(value.get("event_payload"), dict):
        return "invalid_metadata_schema"
    for v in value["event_payload"].values():  # nesting is "currently" not supported
        if isinstance(v, dict) or (isinstance(v, list) and any(isinstance(x, (dict, list)) for x in v)):
            return "invalid_metadata_schema"
    return None


TYPE_CHECKS = {  # the reference data's argument types, as a query string carries them
    "boolean": lambda v: isinstance(v, bool) or str(v).lower() in ("true", "false", "1", "0"),
    "number": lambda v: re.fullmatch(r"\d+", str(v)) is not None,
    "timestamp": lambda v: re.fullmatch(r"\d+(?:\.\d+)?", str(v)) is not None,
}


def truthy(v) -> bool:
    return v is True or str(v).lower() in ("true", "1")


def block_kit_problems(blocks) -> list[str]:
    errs = []
    if not isinstance(blocks, list) or len(blocks) > 50:
        return ["blocks must be a list of at most 50 blocks"]
    for i, b in enumerate(blocks):
        t = b.get("type")
        if t == "header":
            if b["text"]["type"] != "plain_text" or len(b["text"]["text"]) > 150:
                errs.append(f"blocks[{i}]: header must be plain_text ≤ 150")
        elif t == "section":
            if "text" in b and len(b["text"]["text"]) > 3000:
                errs.append(f"blocks[{i}]: section text > 3000")
            fields = b.get("fields", [])
            if len(fields) > 10 or any(len(f["text"]) > 2000 for f in fields):
                errs.append(f"blocks[{i}]: more than 10 fields or a field > 2000")
        elif t == "context":
            if len(b.get("elements", [])) > 10:
                errs.append(f"blocks[{i}]: context has more than 10 elements")
        else:
            errs.append(f"blocks[{i}]: unexpected block type {t}")
    return errs


class SlackDouble(LoopbackServer):
    def __init__(self, token="xoxb-test", channels=("C0DEPLOYS", "C0TEAM"), scopes=SCOPES):
        self.token = token
        self.scopes = set(scopes)
        self.method_faults: dict[str, list[tuple]] = {}  # method -> (status, headers, body) for its next calls
        self.hang = 0.0
        self.names = {"#deploys": "C0DEPLOYS", "#team-hello": "C0TEAM", "#checkout": "C0TEAM"}
        self.channels = set(channels)
        self.specs = {m: _spec(m) for m in METHODS}
        self.violations: list[str] = []
        self.calls: list[tuple[str, dict]] = []
        self.faults: list[tuple] = []  # (http status, headers, body) for the next calls
        self.messages: dict = {}  # (channel, ts) -> {"text", "blocks", "thread_ts", "metadata", "history": [...]}
        self.effects: list[dict] = []  # per post/update: {"method", "mentions", "links"} as Slack would parse it
        self._last_ts = 0.0
        self._lock = threading.Lock()
        super().__init__(self._handler())

    def top_level(self):
        return {k: v for k, v in self.messages.items() if not v.get("thread_ts")}

    def replies(self, ts):
        return [v for v in self.messages.values() if v.get("thread_ts") == ts]

    def posts(self, method: str = "chat.postMessage") -> int:
        return sum(1 for m, _ in self.calls if m == method)

    def _next_ts(self) -> str:
        """An epoch ts, strictly increasing (Slack's are unique per channel)."""
        self._last_ts = max(time.time(), self._last_ts + 1e-6)
        return f"{self._last_ts:.6f}"

    def history(self, args: dict):
        for k, a in self.specs["conversations.history"]["args"].items():
            check = TYPE_CHECKS.get(a.get("type"))
            if k in args and check and not check(args[k]):
                self.violations.append(f"conversations.history: {k} is not a {a['type']}")
                return 200, {}, {"ok": False, "error": "invalid_arguments"}
        channel = args["channel"]
        if not CHANNEL_ID.fullmatch(channel) or channel not in self.channels:
            return 200, {}, {"ok": False, "error": "channel_not_found"}
        needed = "groups:history" if channel.startswith("G") else "channels:history"
        if needed not in self.scopes:
            return 200, {}, {"ok": False, "error": "missing_scope", "needed": needed,
                             "provided": ",".join(sorted(self.scopes))}
        limit = min(999, int(args.get("limit") or 100))
        inclusive = truthy(args.get("inclusive"))
        oldest, latest = float(args.get("oldest") or 0), float(args.get("latest") or time.time())
        if args.get("cursor"):
            try:
                latest = float(base64.b64decode(args["cursor"]).decode().removeprefix("next_ts:"))
                inclusive = False
            except ValueError:
                return 200, {}, {"ok": False, "error": "invalid_cursor"}
        with self._lock:
            rows = sorted(((float(ts), ts, m) for (c, ts), m in self.messages.items()
                           if c == channel and not m.get("thread_ts")), reverse=True)
        rows = [r for r in rows if (oldest <= r[0] <= latest if inclusive else oldest < r[0] < latest)]
        page, more = rows[:limit], len(rows) > limit
        messages = []
        for _, ts, m in page:
            out = {"type": "message", "bot_id": "B1", "app_id": "A1", "text": m["text"], "ts": ts}
            if m.get("blocks"):
                out["blocks"] = m["blocks"]
            replies = self.replies(ts)
            if replies:
                out.update(thread_ts=ts, reply_count=len(replies))
            if m.get("metadata"):
                md = m["metadata"]
                out["metadata"] = md if truthy(args.get("include_all_metadata")) else {"event_type": md["event_type"]}
            messages.append(out)
        body = {"ok": True, "messages": messages, "has_more": more, "pin_count": 0}
        if more:
            body["response_metadata"] = {"next_cursor": base64.b64encode(f"next_ts:{page[-1][1]}".encode()).decode()}
        return 200, {}, body

    def handle(self, method: str, args: dict, auth: str):
        if method not in self.specs:
            self.violations.append(f"unknown method {method}")
            return 200, {}, {"ok": False, "error": "unknown_method"}
        if auth != f"Bearer {self.token}":
            return 200, {}, {"ok": False, "error": "invalid_auth" if auth else "not_authed"}
        self.calls.append((method, args))
        if self.method_faults.get(method):
            return self.method_faults[method].pop(0)
        if self.faults:
            return self.faults.pop(0)
        spec = self.specs[method]["args"]
        for k in args:
            if k not in spec and k != "token":
                self.violations.append(f"{method}: unknown argument {k}")
                return 200, {}, {"ok": False, "error": "invalid_arg_name"}
        for k, a in spec.items():
            if a.get("required") and k not in args and k != "token":
                self.violations.append(f"{method}: missing required argument {k}")
                return 200, {}, {"ok": False, "error": "invalid_arguments"}
        if method == "conversations.history":
            return self.history(args)
        if method in ("chat.postMessage", "chat.update"):
            if "metadata" in args:
                problem = metadata_problem(args["metadata"])
                if problem:
                    self.violations.append(f"{method}: {problem}")
                    return 200, {}, {"ok": False, "error": problem}
            metadata = args.get("metadata")
            if isinstance(metadata, str):
                metadata = json.loads(metadata)
            blocks = args.get("blocks")
            if isinstance(blocks, str):
                blocks = json.loads(blocks)
            if "parse" in args and args["parse"] not in PARSE_MODES[method]:
                self.violations.append(f"{method}: parse must be one of {', '.join(PARSE_MODES[method])}")
                return 200, {}, {"ok": False, "error": "invalid_arguments"}
            if blocks is not None:
                errs = block_kit_problems(blocks)
                if errs:
                    self.violations += errs
                    return 200, {}, {"ok": False, "error": "invalid_blocks"}
                if not args.get("text"):
                    self.violations.append(f"{method}: blocks without a text fallback")
            channel = self.names.get(args["channel"], args["channel"])
            if channel not in self.channels:
                return 200, {}, {"ok": False, "error": "channel_not_found"}
            mentions, linked = message_effects(method, args, blocks)
            self.effects.append({"method": method, "mentions": mentions, "links": linked})
            with self._lock:
                if method == "chat.postMessage":
                    if args.get("thread_ts") and (channel, args["thread_ts"]) not in self.messages:
                        return 200, {}, {"ok": False, "error": "thread_not_found"}
                    ts = self._next_ts()
                    self.messages[(channel, ts)] = {"text": args.get("text"), "blocks": blocks,
                                                    "thread_ts": args.get("thread_ts"), "metadata": metadata or None,
                                                    "history": []}
                    return 200, {}, {"ok": True, "channel": channel, "ts": ts,
                                     "message": {"type": "message", "text": args.get("text"), "ts": ts}}
                msg = self.messages.get((channel, args["ts"]))
                if msg is None:
                    return 200, {}, {"ok": False, "error": "message_not_found"}
                msg["history"].append(msg["text"])
                msg.update(text=args.get("text"), blocks=blocks)
                if metadata is not None:  # left out: the old metadata stays; {}: removed
                    msg["metadata"] = metadata or None
                return 200, {}, {"ok": True, "channel": channel, "ts": args["ts"], "text": args.get("text")}
        if method == "auth.test":
            return 200, {}, {"ok": True, "url": "https://acme.slack.com/", "team": "acme", "user": "fnops",
                             "team_id": "T1", "user_id": "U1", "bot_id": "B1"}
        return 200, {}, {"ok": True, "channel": {"id": args.get("channel"), "name": "deploys"}}

    def _handler(self):
        double = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _serve(self):
                url = urlsplit(self.path)
                method = url.path.strip("/").split("/")[-1]
                n = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(n) if n else b""
                ctype = self.headers.get("content-type", "")
                if "json" in ctype:
                    args = json.loads(raw or b"{}")
                else:
                    args = {k: v[-1] for k, v in parse_qs(raw.decode() or url.query).items()}
                status, headers, body = double.handle(method, args, self.headers.get("authorization", ""))
                if double.hang and method.startswith("chat."):  # done, and answered late
                    time.sleep(double.hang)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json; charset=utf-8")
                self.send_header("content-length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

        return H
