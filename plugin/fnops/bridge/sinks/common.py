"""What every sink says about a release: status words, links, short image names.

Links are built only from configuration (`argocd.url`) and validated names, never from a
payload; free text from a payload is for `detail` and is escaped by each sink for its medium."""

from __future__ import annotations

from urllib.parse import quote

from ...lazyre import LazyRe
from ...types import GitSha

GITHUB_REPO = LazyRe(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}")

STATUS = {
    "syncing": ("syncing", ":arrows_counterclockwise:"),
    "deployed": ("deployed", ":white_check_mark:"),
    "degraded": ("degraded", ":warning:"),
    "sync-failed": ("sync failed", ":x:"),
    "render-failed": ("render failed", ":x:"),
    "alert-firing": ("SLO alert firing", ":rotating_light:"),
    "alert-resolved": ("SLO alert resolved", ":large_green_circle:"),
    "rolled-back": ("rolled back", ":rewind:"),
    "rollback-proposed": ("rollback proposed", ":rewind:"),
    "rollback-skipped": ("rollback not done", ":no_entry_sign:"),
    # the canary lifecycle (bridge/sinks/canary.py)
    "canary-advanced": ("canary advanced", ":hatching_chick:"),
    "canary-promoted": ("canary promoted", ":rocket:"),
    "canary-proposed": ("canary move proposed", ":hatching_chick:"),
    "canary-skipped": ("canary not moved", ":no_entry_sign:"),
    # scaling history (bridge/scaling.py)
    "scaled-to-zero": ("scaled to zero", ":zzz:"),
    "scaled-from-zero": ("scaled from zero", ":sunrise:"),
    "at-max-scale": ("at max scale", ":chart_with_upwards_trend:"),
    "below-max-scale": ("below max scale again", ":chart_with_downwards_trend:"),
    "scaler-failed": ("KEDA scaler failed", ":x:"),
    "scaler-ready": ("KEDA scaler ready", ":white_check_mark:"),
    "scaling-paused": ("KEDA scaling paused", ":double_vertical_bar:"),
    "scaling-resumed": ("KEDA scaling resumed", ":arrow_forward:"),
    "scaling-removed": ("KEDA ScaledObject removed", ":wastebasket:"),
    "scaling-suppressed": ("scaling transitions not recorded", ":mute:"),
    "unknown": ("unknown", ":grey_question:"),
}


def status_of(event: dict) -> tuple[str, str]:
    return STATUS.get(event.get("kind"), STATUS["unknown"])


def short_image(image: str | None) -> str:
    if not image:
        return "?"
    name, _, digest = image.partition("@")
    return f"{name.rsplit('/', 1)[-1]}@{digest[:19]}" if digest else name.rsplit("/", 1)[-1]


def valid_repo(repo) -> bool:
    """owner/name as GitHub spells them; never `.`, `..` or anything a path could climb with."""
    return (isinstance(repo, str) and GITHUB_REPO.fullmatch(repo) is not None
            and repo.split("/")[1] not in (".", ".."))


def valid_sha(sha) -> bool:
    try:
        return isinstance(sha, str) and bool(GitSha(sha))
    except ValueError:
        return False


def commit_url(source: dict) -> str | None:
    repo, commit = source.get("repo"), source.get("commit")
    if valid_repo(repo) and valid_sha(commit):
        return f"https://github.com/{repo}/commit/{commit}"
    return None


def argocd_url(base: str | None, event: dict) -> str | None:
    """The Argo CD page of the event's application, from the configured UI address only."""
    app = event.get("app")
    return f"{base}/applications/{quote(app, safe='')}" if base and app else None


def detail(event: dict) -> str:
    """One sentence on what happened, for thread replies, descriptions and the audit log."""
    word, _ = status_of(event)
    kind = event.get("kind")
    if kind in ("alert-firing", "alert-resolved"):
        names = ", ".join(sorted({a.get("name", "") for a in event.get("alerts", [])}))
        return f"{word}: {names}"
    # A manually synced environment runs the rollback only once someone syncs it.
    awaited = (f"; {event.get('environment')} does not sync automatically: the rollback is applied when "
               f"{event.get('app') or 'its Application'} is synced in Argo CD") if event.get("syncAwaited") else ""
    if event.get("canaryAborted"):
        a = event["canaryAborted"]
        awaited = f"; canary aborted at {a.get('percent')}%: {a.get('reason')}{awaited}"
    if kind == "rolled-back":
        return f"rolled back to {short_image(event.get('restoredImage'))} (commit {str(event.get('commit'))[:7]}){awaited}"
    if kind == "rollback-proposed":
        return f"rollback proposed in {event.get('pullRequest')}{awaited}"
    if kind == "rollback-skipped":
        return f"no rollback: {event.get('reason')}"
    if kind in ("canary-advanced", "canary-promoted", "canary-proposed"):
        to = {"canary-advanced": f"{event.get('next')}% to the new revision",
              "canary-promoted": "100% to the new revision, split removed"}.get(kind, f"see {event.get('pullRequest')}")
        return f"{word} from {event.get('percent')}%: {to} (commit {str(event.get('commit'))[:7]})"
    if kind == "canary-skipped":
        return f"canary not moved: {event.get('reason')}"
    msg = (event.get("message") or "").strip()
    return f"{word}" + (f": {msg}" if msg else "")


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
