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
"""

from __future__ import annotations

import itertools
import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

import schemas
from loopback import LoopbackServer

METHODS = ("chat.postMessage", "chat.update", "auth.test", "conversations.info")


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
    def __init__(self, token="xoxb-test", channels=("C0DEPLOYS", "C0TEAM")):
        self.token = token
        self.names = {"#deploys": "C0DEPLOYS", "#team-hello": "C0TEAM", "#checkout": "C0TEAM"}
        self.channels = set(channels)
        self.specs = {m: _spec(m) for m in METHODS}
        self.violations: list[str] = []
        self.calls: list[tuple[str, dict]] = []
        self.faults: list[tuple] = []  # (http status, headers, body) for the next calls
        self.messages: dict = {}  # (channel, ts) -> {"text", "blocks", "thread_ts", "history": [...]}
        self.effects: list[dict] = []  # per post/update: {"method", "mentions", "links"} as Slack would parse it
        self._ts = itertools.count(1)
        self._lock = threading.Lock()
        super().__init__(self._handler())

    def top_level(self):
        return {k: v for k, v in self.messages.items() if not v.get("thread_ts")}

    def replies(self, ts):
        return [v for v in self.messages.values() if v.get("thread_ts") == ts]

    def handle(self, method: str, args: dict, auth: str):
        if method not in self.specs:
            self.violations.append(f"unknown method {method}")
            return 200, {}, {"ok": False, "error": "unknown_method"}
        if auth != f"Bearer {self.token}":
            return 200, {}, {"ok": False, "error": "invalid_auth" if auth else "not_authed"}
        self.calls.append((method, args))
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
        if method in ("chat.postMessage", "chat.update"):
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
                    ts = f"1700000000.{next(self._ts):06d}"
                    self.messages[(channel, ts)] = {"text": args.get("text"), "blocks": blocks,
                                                    "thread_ts": args.get("thread_ts"), "history": []}
                    return 200, {}, {"ok": True, "channel": channel, "ts": ts,
                                     "message": {"type": "message", "text": args.get("text"), "ts": ts}}
                msg = self.messages.get((channel, args["ts"]))
                if msg is None:
                    return 200, {}, {"ok": False, "error": "message_not_found"}
                msg["history"].append(msg["text"])
                msg.update(text=args.get("text"), blocks=blocks)
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
