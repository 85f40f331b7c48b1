"""Git audit log: every event as one JSON line under audit/<yyyy>/<mm>.jsonl on the audit
branch of the GitOps repository (never the branch Argo CD watches). Events are batched
into few commits, pushed with redo-on-race, never rewritten; a line whose event key is
already in the file is not written again, so a retry after a crash adds nothing twice."""

from __future__ import annotations

import json
import os
import time

from ...delivery import gitops
from ...errors import TemporaryError
from . import Sink
from .common import detail, truncate

DETAIL_LIMIT = 500  # the audit branch is permanent: a payload's essay is not

def line_for(event: dict, release: dict) -> dict:
    source = (release or {}).get("source") or {}
    return {
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(event.get("receivedAt", time.time()))),
        "key": event["key"], "source": event.get("source"), "kind": event.get("kind"),
        "function": event.get("function"), "environment": event.get("environment"),
        "revision": (release or {}).get("revision") or event.get("revision"), "image": (release or {}).get("image"),
        "sourceRepo": source.get("repo"), "sourceCommit": source.get("commit"),
        "detail": truncate(detail(event), DETAIL_LIMIT),
        # A scaling transition says when it happened (KEDA's event time, the alert's start or end).
        **({"happenedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(event["happenedAt"]))}
           if event.get("source") == "scaling" and event.get("happenedAt") else {}),
    }


class AuditSink(Sink):
    name = "audit"

    def __init__(self, cfg, data_dir: str):
        self.cfg = cfg
        self.path = os.path.join(data_dir, "audit-tree")

    def _tree(self) -> gitops.Git:
        git = gitops.Git(self.path, self.cfg.token, self.cfg.repo)
        if not os.path.isdir(os.path.join(self.path, ".git")):
            os.makedirs(self.path, exist_ok=True)
            git.run("init", "--quiet")
            git.run("remote", "add", "--", "origin", self.cfg.repo)
        p = git.run("fetch", "--quiet", "--no-tags", "origin",
                    f"+refs/heads/{self.cfg.audit_branch}:refs/remotes/origin/{self.cfg.audit_branch}", check=False)
        if p.returncode == 0:
            git.run("checkout", "--quiet", "--force", "-B", self.cfg.audit_branch,
                    f"refs/remotes/origin/{self.cfg.audit_branch}")
        elif "couldn't find remote ref" in p.stderr.lower():
            # First event ever: the audit branch starts as an orphan with no files of the main branch.
            git.run("checkout", "--quiet", "--force", "--orphan", f"new-{self.cfg.audit_branch}")
            git.run("rm", "-rf", "--quiet", "--ignore-unmatch", ".")
        else:
            raise TemporaryError(f"audit: cannot fetch {self.cfg.audit_branch}: {git.redact(p.stderr.strip()[-200:])}")
        git.run("clean", "--quiet", "-fdx")
        return git

    def deliver(self, event: dict, ctx):
        return self.deliver_batch([event], ctx)

    def deliver_batch(self, events: list[dict], ctx):
        lines = [(e, line_for(e, ctx.release(e))) for e in events]

        def change(root):
            touched = []
            for _, line in lines:
                rel = f"audit/{line['at'][:4]}/{line['at'][5:7]}.jsonl"
                path = os.path.join(root, rel)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                keys = set()
                if os.path.exists(path):
                    with open(path, encoding="utf-8") as f:
                        keys = {json.loads(x)["key"] for x in f if x.strip()}
                if line["key"] in keys:
                    continue
                with open(path, "a", encoding="utf-8") as f:
                    f.write(json.dumps(line, sort_keys=True) + "\n")
                touched.append(rel)
            if not touched:
                return None
            kinds = ", ".join(sorted({line["kind"] for _, line in lines}))
            return sorted(set(touched)), f"fnops audit: {len(lines)} event(s) ({kinds})\n"

        tree = self._tree()
        try:
            gitops.publish(tree, self.cfg.audit_branch, change)
        except gitops.GitError as e:
            raise TemporaryError(f"audit: {e}") from None
        return None
