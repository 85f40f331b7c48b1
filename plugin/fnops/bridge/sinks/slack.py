"""Slack: one message per release per channel, updated in place as the release moves
(syncing → deployed → degraded → rolled back); every later event is a thread reply.
Message ts are kept in the store, so a restart never posts a second top-level message."""

from __future__ import annotations

from ...errors import PermanentError
from . import Sink
from .common import argocd_url, commit_url, detail, short_image, status_of, truncate
from .http import raise_for

PERMANENT = ("channel_not_found", "not_in_channel", "is_archived", "invalid_auth", "not_authed", "token_revoked",
             "missing_scope", "invalid_blocks", "msg_too_long", "account_inactive", "no_permission",
             "restricted_action", "invalid_arguments", "invalid_arg_name")


class SlackSink(Sink):
    name = "slack"

    def __init__(self, cfg):
        from slack_sdk import WebClient

        kw = {"base_url": cfg.base_url} if cfg.base_url else {}
        self.client = WebClient(token=cfg.token, timeout=15, **kw)
        self.client.retry_handlers = []  # the outbox retries (and honours Retry-After) itself
        self.default_channel = cfg.default_channel

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
        fields = [f"*Function*\n`{fn}`", f"*Environment*\n`{env}`", f"*Status*\n{emoji} {word}",
                  f"*Image*\n`{short_image(release.get('image'))}`"]
        if commit:
            fields.append(f"*Source commit*\n<{link}|{commit}>" if link else f"*Source commit*\n`{commit}`")
        argo = argocd_url(event)
        if argo:
            fields.append(f"*Argo CD*\n<{argo}|{event.get('app')}>")
        blocks = [
            {"type": "header", "text": {"type": "plain_text", "text": truncate(f"{fn} → {env}: {word}", 150)}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": truncate(f, 2000)} for f in fields[:10]]},
        ]
        msg = detail(event)
        if msg:
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(msg, 3000)}]})
        text = truncate(f"{emoji} {fn} → {env}: {word} ({short_image(release.get('image'))}"
                        + (f", source {commit}" if commit else "") + ")", 3000)
        return blocks, text

    def deliver(self, event: dict, ctx):
        release = ctx.release(event) or {}
        channel = release.get("notifySlack") or self.default_channel
        if not channel:
            raise PermanentError("slack: no channel (set notify.slack in function.yaml or slack.defaultChannel)")
        key = f"{channel}|{event['function']}|{event['environment']}|{release.get('image')}"
        blocks, text = self.blocks(event, release)
        msg = ctx.store.get("slack-message", key)
        if msg is None:
            r = self._call("chat_postMessage", channel=channel, text=text, blocks=blocks, unfurl_links=False)
            # Recorded at once: after a crash the release's next event updates this message.
            ctx.store.put("slack-message", key, {"channel": r["channel"], "ts": r["ts"]})
            ctx.store.put("slack-reply", str(event["id"]), r["ts"])
            return None
        if ctx.store.get("slack-reply", str(event["id"])) is not None:
            return None  # already told (a retry after a crash)
        self._call("chat_update", channel=msg["channel"], ts=msg["ts"], text=text, blocks=blocks)
        r = self._call("chat_postMessage", channel=msg["channel"], thread_ts=msg["ts"], text=truncate(
            f"{status_of(event)[1]} {detail(event)}", 3000), unfurl_links=False)
        ctx.store.put("slack-reply", str(event["id"]), r["ts"])
        return None
