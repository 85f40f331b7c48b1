"""`fnops bridge …`: serve the notifications bridge, check its config."""

from __future__ import annotations

import contextlib
import sys

import click

from .group import cli


@cli.group()
def bridge():
    """The notifications bridge: Argo CD + Alertmanager -> Slack, GitHub, Git audit, rollback."""


@bridge.command("serve")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), help="Bridge config (YAML).")
def bridge_serve(config_path):
    """Run the bridge (HTTP ingress + durable outbox worker)."""
    from ..bridge.server import serve

    serve(config_path)


@bridge.command("check-config")
@click.argument("config_path", type=click.Path(dir_okay=False))
def bridge_check_config(config_path):
    """Validate a bridge config, including that the environment variables it names are set."""
    from ..bridge.config import check

    problems = check(config_path)
    for p in problems:
        click.echo(str(p), err=True)
    if problems:
        sys.exit(2)
    click.echo(f"{config_path}: ok")


# A command waits this long for the outbox's database, then fails with one line (exit 1).
CONNECT_TIMEOUT = 5


@contextlib.contextmanager
def _store(config_path):
    """The outbox, opened without a pool (one connection per query, each bounded by
    CONNECT_TIMEOUT), closed after; a database that stops answering is one line, exit 1."""
    from ..bridge import config as bridge_config
    from ..bridge.store import open_store, redacted
    from ..errors import TemporaryError

    url = bridge_config.load(config_path).store_url
    store = open_store(url, pooled=False, connect_timeout=CONNECT_TIMEOUT)
    try:
        yield store
    except store.errors as e:
        raise TemporaryError(f"outbox ({store.name}): {redacted(str(e), url)}") from None
    finally:
        store.close()


@bridge.command("deliveries")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), help="Bridge config (YAML).")
@click.option("--state", type=click.Choice(["pending", "done", "failed"]), help="Only deliveries in this state.")
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def bridge_deliveries(config_path, state, output):
    """List the outbox's deliveries (failed: the dead letter, with the reason)."""
    import json as _json

    from ..escape import printable

    with _store(config_path) as store:
        rows = store.deliveries(state)
    items = [{"id": f"{eid}/{sink}", "event": eid, "sink": sink, "state": st, "attempts": n, "error": err, "key": key}
             for eid, sink, st, n, err, key in rows]
    if output == "json":
        click.echo(_json.dumps(items, sort_keys=True))
        return
    for i in items:
        click.echo(f"{i['id']:<16} {i['state']:<8} {i['attempts']:>3}  {printable(i['key'])}"
                   + (f"  — {printable(i['error'])}" if i["error"] else ""))
    click.echo(f"{len(items)} deliveries", err=True)


@bridge.command("retry")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), help="Bridge config (YAML).")
@click.argument("ids", nargs=-1, required=True, metavar="ID...")
def bridge_retry(config_path, ids):
    """Put failed deliveries back in line: ID is EVENT (every failed sink) or EVENT/SINK."""
    targets = []
    for raw in ids:
        event, _, sink = raw.partition("/")
        if not event.isdigit() or (sink and not sink.isalpha()):
            raise click.BadParameter(f"'{raw[:40]}' is not EVENT or EVENT/SINK (e.g. 42 or 42/slack)", param_hint="ID")
        targets.append((int(event), sink or None))
    with _store(config_path) as store:
        n = store.requeue(targets)
    click.echo(f"{n} deliveries back to pending; the bridge delivers them in order")
    if not n:
        sys.exit(1)
