"""Slack: one message per release per channel, updated in place as the release moves
(syncing → deployed → degraded → rolled back); every later event is a thread reply.
Message ts are kept in the store, so a restart never posts a second top-level message.

Text from payloads is escaped (`&`, `<`, `>`), so `<!channel>` or `<https://evil|…>` in a
health message stays text; and Slack is asked not to parse plain text (`parse: none` and
no `link_names` on every call, `verbatim` on every mrkdwn object), so a plain `@here` or a
bare URL neither notifies nor becomes a link — and in case a client parses anyway, those
are broken by an invisible word joiner (`mrkdwn`). The only links are the commit (validated
repo and SHA) and Argo CD (`argocd.url` from config). A function may name its channel (`notify.slack`) only
within `slack.allowedChannels`; otherwise the default channel is used. Each top-level
message carries the event key as message metadata.

The one window left (the Web API has no idempotency key, and the API subset fnops uses has
no history lookup): a crash after chat.postMessage reached Slack and before its ts was
written to the outbox — one SQLite or PostgreSQL commit — reposts that message (top-level
or thread reply) once on redelivery, and the intent record makes the bridge log it; a
top-level message's metadata carries the event key, so the duplicate is recognisable."""

from __future__ import annotations

import fnmatch
import logging
import re

from ...errors import PermanentError
from ...escape import slack_text
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
            raise_for(f"slack {method}", r.status_code, (r.data or {}).get("error", "") if isinstance(r.data, dict) else "",
                      r.headers, permanent_codes=PERMANENT)
        except OSError as e:
            raise_for(f"slack {method}", None, str(e))

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
            if not ctx.store.claim("slack-intent", f"{event['id']}:post", 1):
                log.warning("slack: event %s was being posted when the bridge stopped; posting again "
                            "(the message metadata carries its key, so a duplicate is recognisable)", event["id"])
            r = self._call("chat_postMessage", channel=channel, text=text, blocks=blocks, unfurl_links=False, **PLAIN,
                           metadata={"event_type": "fnops_release",
                                     "event_payload": {"key": event["key"], "function": event["function"],
                                                       "environment": event["environment"]}})
            # Recorded at once: after a crash the release's next event updates this message.
            ctx.store.put("slack-message", key, {"channel": r["channel"], "ts": r["ts"]})
            ctx.store.put("slack-reply", str(event["id"]), r["ts"])
            return None
        if ctx.store.get("slack-reply", str(event["id"])) is not None:
            return None  # already told (a retry after a crash)
        if not ctx.store.claim("slack-intent", f"{event['id']}:reply", 1):
            log.warning("slack: the reply for event %s was being posted when the bridge stopped; posting again",
                        event["id"])
        self._call("chat_update", channel=msg["channel"], ts=msg["ts"], text=text, blocks=blocks, **PLAIN)
        r = self._call("chat_postMessage", channel=msg["channel"], thread_ts=msg["ts"], text=truncate(
            f"{status_of(event)[1]} {mrkdwn(detail(event))}", 3000), unfurl_links=False, **PLAIN)
        ctx.store.put("slack-reply", str(event["id"]), r["ts"])
        return None
