"""Delivery: what the GitHub Action and the pin commands do — detect what changed, build
and push images (`runtimes/`, `build`), write pins (`pins`), land them in Git (`commits`,
`gitops`, `pullrequests`), and say what is pinned where (`status`).

Never imported by `fnops render`."""
