"""Landing pin changes: one commit for a set of pin operations, pushed to the branch with
redo-on-race (gitops.publish), or onto a review branch with a pull request."""

from __future__ import annotations

from ..errors import FnopsError
from .pins import Change, PinOp, short


def commit_message(changes: list[Change], why: str | None = None) -> str:
    """Title says what, body says why, trailers say it again for machines."""
    c0 = changes[0]
    if len(changes) == 1:
        if c0.action == "rollback":
            title = f"fnops: roll back {c0.function} in {c0.environment} to {short(c0.image)}"
        elif c0.action == "promote":
            title = f"fnops: promote {c0.function} to {c0.environment} ({short(c0.image)})"
        elif c0.action == "canary-promote":
            title = f"fnops: promote the canary of {c0.function} in {c0.environment} to 100% ({short(c0.image)})"
        elif c0.action.startswith("canary-"):
            title = (f"fnops: canary of {c0.function} in {c0.environment} to {c0.action[7:]}% "
                     f"({short(c0.image)})")
        else:
            title = f"fnops: release {c0.function} to {c0.environment} ({short(c0.image)})"
    else:
        envs = sorted({c.environment for c in changes})
        title = f"fnops: {c0.action} {len(changes)} functions to {', '.join(envs)}"
    body = []
    if why:
        body.append(why)
    for c in changes:
        was = f" (was {short(c.previous_image)})" if c.previous_image else ""
        src = c.source or {}
        origin = f" from {src.get('repo', '')}@{str(src['commit'])[:7]}" if src.get("commit") else ""
        body.append(f"- {c.function} [{c.environment}]: {c.image}{was}{origin}")
    trailers = []
    for c in changes:
        trailers += [f"Fnops-Action: {c.action}", f"Fnops-Function: {c.function}",
                     f"Fnops-Environment: {c.environment}", f"Fnops-Image: {c.image}"]
        if (c.source or {}).get("commit"):
            trailers.append(f"Fnops-Source-Commit: {c.source['commit']}")
        if c.rollback_of:
            trailers.append(f"Fnops-Rollback-Of: {c.rollback_of}")
    return f"{title}\n\n" + "\n".join(body) + "\n\n" + "\n".join(trailers) + "\n"


def review_branch(ops: list[PinOp]) -> str:
    """One stable branch per function × environment set, so a new run updates its open PR."""
    names = sorted({op.name for op in ops})
    envs = sorted({op.env for op in ops})
    if all(op.kind == "canary" for op in ops):  # not the branch a release's own PR is on
        return f"fnops/canary/{'+'.join(envs)}/{'+'.join(names)[:60]}"
    return f"fnops/{'+'.join(envs)}/{names[0] if len(names) == 1 else f'{len(names)}-functions-' + '-'.join(names)[:60]}"


def commit_pins(ops, *, repo: str | None, url: str | None, branch: str, token: str | None,
        why: str | None = None, publish_kwargs=None, mode: str = "push", github_repo: str | None = None,
        api_url: str | None = None, api_token: str | None = None):
    """Apply every op in one commit on `branch` and push it — or, in PR mode, onto a review
    branch with a pull request into `branch`. Returns (sha | None, changes, pr url | None)."""
    from . import gitops

    applied: list[Change] = []

    def change(root):
        applied.clear()
        for op in ops:
            c = op.apply(root)
            if c is not None:
                applied.append(c)
        if not applied:
            return None
        return [c.path for c in applied], commit_message(applied, why)

    if mode == "pr":
        from . import pullrequests

        from .origin import remote_url

        # A remote on no GitHub (GitLab, Gitea, a bare repository: the Tekton path) has no pull
        # request API fnops speaks: the review branch is pushed and a person opens the request.
        remote = url or remote_url(repo or ".")
        slug = pullrequests.github_slug(github_repo or url)
        prs = pullrequests.PullRequests(slug, api_token or token, api_url) if slug else None
        head = review_branch(ops)
        with gitops.scratch_tree(repo, url, branch, token) as tree:
            sha, new = gitops.publish_branch(tree, branch, head, change, **(publish_kwargs or {}))
            if sha is None:
                return None, list(applied), None
            if prs is None:
                pullrequests.say_open_it(head, branch, remote)
                return sha, list(applied), None
            title = commit_message(applied, why).splitlines()[0]
            try:
                pr = prs.open_or_update(head=head, base=branch, title=title,
                                        body=pullrequests.body_for(applied, why), comment=new)
            except FnopsError as e:
                # Nothing half-done: the review branch goes back to what it was (no stray branch).
                if not new:
                    raise
                undone = gitops.withdraw_branch(tree, head, sha)
                raise type(e)(f"{e} (nothing left behind: the review branch {head} was {undone})" if undone else
                              f"{e} (the review branch {head} could not be removed: delete it by hand)") from None
        return sha, list(applied), pr
    with gitops.scratch_tree(repo, url, branch, token) as tree:
        sha = gitops.publish(tree, branch, change, **(publish_kwargs or {}))
    return sha, list(applied), None
