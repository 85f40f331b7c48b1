"""Slack: one message per release per channel, updated in place as the release moves
(syncing → deployed → degraded → rolled back); every later event is a thread reply.
Message ts are kept in the store, so a restart never posts a second top-level message.

Text from payloads is escaped (`&`, `<`, `>`), so `<!channel>` or `<https://evil|…>` in a
health message stays text; and Slack is asked not to parse plain text (`parse: none` and
no `link_names` on every call, `verbatim` on every mrkdwn object), so a plain `@here` or a
bare URL neither notifies nor becomes a link — and in case a client parses anyway, those
are broken by an invisible word joiner (`mrkdwn`). The only links are the commit (validated
repo and SHA) and Argo CD (`argocd.url` from config). A function may name its channel (`notify.slack`) only
within `slack.allowedChannels`; otherwise the default channel is used.

Exactly one top-level message per release per channel, across kill -9 and database outages:
the Web API has no idempotency key, so each top-level post carries its release in message
metadata (`fnops_release`: function, environment, image, event key), and an intent record
(with the first attempt's time) is written before the post. A delivery that finds its intent
open — attempted before, no ts stored, no refusal from Slack — does not know whether Slack
has the message, so it reads the channel's history since that attempt (conversations.history
with include_all_metadata; a few pages at most; a 429 waits its Retry-After) and adopts the
message it finds. Without the channels:history / groups:history scope (or with a channel
named by a name whose ID no earlier post revealed) that lookup is impossible: the bridge logs
it, counts it (fnops_bridge_slack_lookups) and posts as before. The ts of a post is kept in
hand through a database outage and written when the database is back.

The window left: a thread reply sent just before a crash (not an outage) is posted again on
redelivery, once, and logged (the API subset has no way to read a thread back)."""

from __future__ import annotations

import fnmatch
import logging
import re
import time

from ...errors import FnopsError, PermanentError, TemporaryError
from ...escape import slack_text
from ..store.base import patiently
from ..testfaults import crash_point
from . import Sink
from .common import argocd_url, commit_url, detail, short_image, status_of, truncate
from .http import raise_for

log = logging.getLogger("fnops.bridge")

# Slack's special mentions written plainly, a URL scheme, and the dot before a domain's next
# label ("evil.example", "www.…"): what Slack's automatic parsing turns into a mention or a link.
_MENTION = re.compile(r"@(?=(?:here|channel|everyone|group)\b)", re.IGNORECASE)
_SCHEME = re.compile(r"(?<=[A-Za-z0-9+.-]):(?=//)")
_DOMAIN_DOT = re.compile(r"(?<=[A-Za-z0-9-])\.(?=[A-Za-z])")
WORD_JOINER = "\u2060"  # invisible, and no mention or URL pattern runs across it

# Every call says it: chat.update's default parse mode (`client`) would parse `@here` in text.
PLAIN = {"parse": "none", "link_names": False}

PERMANENT = ("channel_not_found", "not_in_channel", "is_archived", "invalid_auth", "not_authed", "token_revoked",
             "missing_scope", "invalid_blocks", "msg_too_long", "account_inactive", "no_permission",
             "restricted_action", "invalid_arguments", "invalid_arg_name")


EVENT_TYPE = "fnops_release"  # the metadata event type of a release's top-level message
# The lookup reads from the first attempt minus this (clocks differ), `LOOKUP_LIMIT` messages a
# page, `LOOKUP_PAGES` pages at most: a busy channel costs a bounded number of tier-3 calls.
LOOKUP_SLACK, LOOKUP_LIMIT, LOOKUP_PAGES = 120.0, 200, 3
CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,}")
NO_SCOPE = ("missing_scope", "not_allowed_token_type")


def release_metadata(event: dict, release: dict) -> dict:
    """The identity of a release's top-level message (flat strings: Slack takes no nesting)."""
    return {"event_type": EVENT_TYPE,
            "event_payload": {"function": event["function"], "environment": event["environment"],
                              "image": str(release.get("image")), "key": event["key"]}}


def mrkdwn(text) -> str:
    """Payload text for a mrkdwn field: Slack's control characters escaped, and plain special
    mentions and URLs broken so no parser reads them as such."""
    text = slack_text(text)
    text = _MENTION.sub("@" + WORD_JOINER, text)
    text = _SCHEME.sub(":" + WORD_JOINER, text)
    return _DOMAIN_DOT.sub(WORD_JOINER + ".", text)


def _section_text(text: str) -> dict:
    # verbatim: Slack keeps the markup fnops wrote (its own <url|label> links) and parses nothing else
    return {"type": "mrkdwn", "text": text, "verbatim": True}


class SlackSink(Sink):
    name = "slack"

    def __init__(self, cfg, argocd_base: str | None = None, timeout: float = 15):
        from slack_sdk import WebClient

        kw = {"base_url": cfg.base_url} if cfg.base_url else {}
        self.client = WebClient(token=cfg.token, timeout=int(timeout), **kw)
        self.timeout = timeout
        self.client.retry_handlers = []  # the outbox retries (and honours Retry-After) itself
        self.default_channel, self.allowed, self.argocd = cfg.default_channel, cfg.allowed_channels, argocd_base

    def channel_for(self, release: dict) -> str | None:
        wanted = release.get("notifySlack")
        if wanted and any(fnmatch.fnmatchcase(wanted, pat) for pat in self.allowed):
            return wanted
        if wanted:
            log.warning("slack: notify.slack names a channel outside slack.allowedChannels; using the default")
        return self.default_channel

    def _call(self, method: str, **kw) -> dict:
        from slack_sdk.errors import SlackApiError

        try:
            return getattr(self.client, method)(**kw).data
        except SlackApiError as e:
            r = e.response
            try:
                raise_for(f"slack {method}", r.status_code, self.error_code(e), r.headers, permanent_codes=PERMANENT)
            except FnopsError as err:
                # Slack answered no (ok:false, 429): nothing was posted, the outcome is known.
                err.refused = r.status_code < 500
                raise
        except OSError as e:
            raise_for(f"slack {method}", None, str(e))

    @staticmethod
    def error_code(e) -> str:
        data = e.response.data
        return data.get("error", "") if isinstance(data, dict) else ""

    def blocks(self, event: dict, release: dict) -> tuple[list, str]:
        word, emoji = status_of(event)
        fn, env = event["function"], event["environment"]
        source = release.get("source") or {}
        link = commit_url(source)
        commit = str(source.get("commit") or "")[:7]
        image = mrkdwn(short_image(release.get("image")))
        fields = [f"*Function*\n`{fn}`", f"*Environment*\n`{env}`", f"*Status*\n{emoji} {word}",
                  f"*Image*\n`{image}`"]
        if commit:
            fields.append(f"*Source commit*\n<{link}|{slack_text(commit)}>" if link else
                          f"*Source commit*\n`{slack_text(commit)}`")
        argo = argocd_url(self.argocd, event)
        if argo:
            fields.append(f"*Argo CD*\n<{argo}|{mrkdwn(event.get('app'))}>")
        blocks = [
            {"type": "header", "text": {"type": "plain_text", "text": truncate(f"{fn} → {env}: {word}", 150)}},
            {"type": "section", "fields": [_section_text(truncate(f, 2000)) for f in fields[:10]]},
        ]
        msg = detail(event)
        if msg:
            blocks.append({"type": "context", "elements": [_section_text(truncate(mrkdwn(msg), 3000))]})
        text = truncate(f"{emoji} {fn} → {env}: {word} ({image}" + (f", source {slack_text(commit)}" if commit else "")
                        + ")", 3000)
        return blocks, text

    def deliver(self, event: dict, ctx):
        release = ctx.release(event) or {}
        channel = self.channel_for(release)
        if not channel:
            raise PermanentError("slack: no channel (set notify.slack in function.yaml or slack.defaultChannel)")
        key = f"{channel}|{event['function']}|{event['environment']}|{release.get('image')}"
        blocks, text = self.blocks(event, release)
        msg = ctx.store.get("slack-message", key)
        if msg is None:
            metadata = release_metadata(event, release)
            found, intent = self.unknown_outcome(event, ctx, channel, metadata)
            if found is None:
                crash_point("slack:before-send")
                try:
                    r = self._call("chat_postMessage", channel=channel, text=text, blocks=blocks, unfurl_links=False,
                                   **PLAIN, metadata=metadata)
                except FnopsError as e:
                    if getattr(e, "refused", False):  # not posted: the next attempt need not look
                        ctx.store.put("slack-intent", f"{event['id']}:post", {**intent, "open": False})
                    raise
                crash_point("slack:after-send")
                found = {"channel": r["channel"], "ts": r["ts"]}
            # Recorded at once (and held through an outage): the release's next event updates it.
            patiently(lambda: ctx.store.put("slack-message", key, found))
            patiently(lambda: ctx.store.put("slack-reply", str(event["id"]), found["ts"]))
            if found["channel"] != channel:  # a channel named by name: its ID, for a later lookup
                patiently(lambda: ctx.store.put("slack-channel", channel, found["channel"]))
            crash_point("slack:after-ts")
            return None
        if ctx.store.get("slack-reply", str(event["id"])) is not None:
            return None  # already told (a retry after a crash)
        if not ctx.store.claim("slack-intent", f"{event['id']}:reply", 1):
            log.warning("slack: the reply for event %s was being posted when the bridge stopped; posting again",
                        event["id"])
        self._call("chat_update", channel=msg["channel"], ts=msg["ts"], text=text, blocks=blocks, **PLAIN)
        r = self._call("chat_postMessage", channel=msg["channel"], thread_ts=msg["ts"], text=truncate(
            f"{status_of(event)[1]} {mrkdwn(detail(event))}", 3000), unfurl_links=False, **PLAIN)
        patiently(lambda: ctx.store.put("slack-reply", str(event["id"]), r["ts"]))
        return None

    # -- a post of unknown outcome -------------------------------------------------------------
    def unknown_outcome(self, event: dict, ctx, channel: str, metadata: dict) -> tuple[dict | None, dict]:
        """Open this event's post intent; if one was open already (an attempt whose outcome is
        unknown), look the message up. -> ({"channel", "ts"} of the message to adopt, or None;
        the intent)."""
        ikey = f"{event['id']}:post"
        intent = ctx.store.get("slack-intent", ikey)
        latest = None
        if not isinstance(intent, dict):  # an intent of an earlier fnops (1): open, time unknown
            intent = None if intent is None else {"at": event.get("receivedAt", time.time()), "open": True}
        elif intent.get("open"):
            # Only the last attempt's outcome can be unknown (every attempt writes its own time
            # first; one Slack refused closes it): its message, if any, lies within this window.
            # Bounding it both ways matters, as history pages run newest first.
            latest = intent["at"] + self.timeout + LOOKUP_SLACK
        opened = {"at": time.time(), "open": True}
        if intent is None or not intent.get("open"):
            ctx.store.put("slack-intent", ikey, opened)
            return None, opened
        log.warning("slack: event %s may have been posted before the bridge stopped; looking it up", event["id"])
        found = self.look_up(ctx, channel, metadata["event_payload"], intent["at"] - LOOKUP_SLACK, latest)
        if found:
            log.info("slack: event %s was posted already (ts %s); adopting it", event["id"], found["ts"])
        else:
            log.info("slack: event %s was not posted; posting it", event["id"])
            ctx.store.put("slack-intent", ikey, opened)  # this attempt's own time, for the next lookup
        return found, opened

    def _count(self, ctx, result: str) -> None:
        if getattr(ctx, "metrics", None) is not None:
            ctx.metrics.slack_lookups.labels(result).inc()

    def look_up(self, ctx, channel: str, payload: dict, oldest: float, latest: float | None = None) -> dict | None:
        """The release's top-level message in `channel` between `oldest` and `latest`, by its metadata."""
        from slack_sdk.errors import SlackApiError

        channel_id = channel if CHANNEL_ID.fullmatch(channel) else ctx.store.get("slack-channel", channel)
        if not channel_id:
            self._count(ctx, "no-channel-id")
            log.warning("slack: cannot look up a post in %s (a channel name whose ID no post revealed yet; name "
                        "channels by ID to close this); posting, which may repeat the message", channel)
            return None
        want = {k: payload[k] for k in ("function", "environment", "image")}
        cursor = None
        for _ in range(LOOKUP_PAGES):
            args = {"cursor": cursor} if cursor else {}
            if latest is not None:
                args["latest"] = f"{latest:.6f}"
            try:
                r = self.client.conversations_history(channel=channel_id, oldest=f"{oldest:.6f}", limit=LOOKUP_LIMIT,
                                                      include_all_metadata=True, **args).data
            except SlackApiError as e:
                code = self.error_code(e)
                if code in NO_SCOPE:
                    self._count(ctx, "no-scope")
                    log.warning("slack: cannot look up a post of unknown outcome: the token lacks %s (%s); "
                                "posting, which may repeat the message — grant channels:history and "
                                "groups:history", (e.response.data or {}).get("needed") or "channels:history", code)
                    return None
                try:
                    raise_for("slack conversations.history", e.response.status_code, code, e.response.headers)
                except TemporaryError:  # 429 (tier 3) or 5xx: try again later, as Slack asked
                    raise
                except PermanentError as err:
                    self._count(ctx, "error")
                    log.warning("slack: cannot look up a post of unknown outcome (%s); posting", err)
                    return None
            except OSError as e:
                raise_for("slack conversations.history", None, str(e))
            for m in r.get("messages") or []:
                meta = m.get("metadata") or {}
                body = meta.get("event_payload") or {}
                if (meta.get("event_type") == EVENT_TYPE and all(body.get(k) == v for k, v in want.items())
                        and m.get("thread_ts") in (None, m.get("ts"))):
                    self._count(ctx, "found")
                    return {"channel": channel_id, "ts": m["ts"]}
            cursor = (r.get("response_metadata") or {}).get("next_cursor")
            if not (r.get("has_more") and cursor):
                break
        else:
            self._count(ctx, "truncated")
            log.warning("slack: looked through %d messages of %s without reaching the post's time; posting, which "
                        "may repeat the message", LOOKUP_PAGES * LOOKUP_LIMIT, channel_id)
            return None
        self._count(ctx, "absent")
        return None
