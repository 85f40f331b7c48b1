"""PR mode: a review branch pushed to a real bare remote and a pull request opened (or
updated) through PyGithub against a GitHub double that validates every request."""

import pytest
import yaml

from conftest import fnops
from github_double import GitHubDouble
from gitrepo import clone, git, head, make_origin, show

REPO = "ghcr.io/acme/functions/hello"
D = lambda c: "sha256:" + c * 64  # noqa: E731


@pytest.fixture
def gh():
    with GitHubDouble(token="ghp_pr_token") as double:
        yield double
    assert double.violations == []


@pytest.fixture
def work(tmp_path):
    origin = make_origin(tmp_path)
    return origin, clone(origin, tmp_path / "work")


def bump(work, gh, image, *extra, token="ghp_pr_token"):
    return fnops("bump", "hello", "--env", "prod", "--image", image, "--source-commit", head(work), "--mode", "pr",
                 "--github-repo", "acme/functions", *extra, cwd=work,
                 env={"GITHUB_API_URL": gh.url, "GITOPS_TOKEN": token, "SOURCE_DATE_EPOCH": "1795341600"})


def test_pr_mode_opens_one_pull_request_and_leaves_main_alone(gh, work):
    origin, wd = work
    main_before = git(origin, "rev-parse", "main")
    r = bump(wd, gh, f"{REPO}:sha-1a2b3c4@{D('b')}")
    assert r.returncode == 0, r.stderr
    assert git(origin, "rev-parse", "main") == main_before
    pin = yaml.safe_load(show(origin, "functions/hello/releases/prod.yaml", "fnops/prod/hello"))
    assert pin["image"] == f"{REPO}:sha-1a2b3c4@{D('b')}"
    assert len(gh.pulls) == 1
    pr = gh.pulls[0]
    assert pr["title"] == "fnops: release hello to prod (sha-1a2b3c4)"
    assert pr["head"]["ref"] == "fnops/prod/hello" and pr["base"]["ref"] == "main"
    assert "| `hello` | `prod` | `sha-1a2b3c4` |" in pr["body"]
    assert f"pull request: https://github.com/acme/functions/pull/{pr['number']}" in r.stdout
    # the PR's diff against main is exactly the pin
    assert git(origin, "diff", "--name-only", "main", "fnops/prod/hello") == "functions/hello/releases/prod.yaml"


def test_a_second_bump_updates_the_open_pull_request_without_force(gh, work):
    origin, wd = work
    assert bump(wd, gh, f"{REPO}:sha-1a2b3c4@{D('b')}").returncode == 0
    first_tip = git(origin, "rev-parse", "fnops/prod/hello")
    r = bump(wd, gh, f"{REPO}:sha-2b3c4d5@{D('c')}")
    assert r.returncode == 0, r.stderr
    assert len(gh.pulls) == 1 and len(gh.comments) == 1
    assert "sha-2b3c4d5" in gh.comments[0]["body"]
    tip = git(origin, "rev-parse", "fnops/prod/hello")
    assert git(origin, "merge-base", "--is-ancestor", first_tip, tip, check=False) == ""  # fast-forward
    pin = yaml.safe_load(show(origin, "functions/hello/releases/prod.yaml", "fnops/prod/hello"))
    assert pin["image"].endswith(D("c"))
    assert git(origin, "diff", "--name-only", "main", "fnops/prod/hello") == "functions/hello/releases/prod.yaml"
    # same pin again: nothing new pushed, no new comment
    assert bump(wd, gh, f"{REPO}:sha-2b3c4d5@{D('c')}").returncode == 0
    assert git(origin, "rev-parse", "fnops/prod/hello") == tip and len(gh.comments) == 1


def test_bad_token_is_one_line_exit_1(gh, work):
    origin, wd = work
    r = bump(wd, gh, f"{REPO}:sha-1a2b3c4@{D('b')}", token="ghp_wrong")
    assert r.returncode == 1 and "401 Bad credentials" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "ghp_wrong" not in r.stderr
    assert gh.pulls == []
    assert git(origin, "branch", "--list", "fnops/*") == ""  # nothing pushed before the API said no


def test_github_outage_is_reported_as_temporary(gh, work):
    origin, wd = work
    gh.faults += [(503, {}, {"message": "Service Unavailable"})] * 3
    r = bump(wd, gh, f"{REPO}:sha-1a2b3c4@{D('b')}")
    assert r.returncode == 1 and "GitHub is unavailable (503" in r.stderr
    assert git(origin, "branch", "--list", "fnops/*") == ""


def test_promote_into_an_approval_environment_defaults_to_a_pull_request(gh, work):
    origin, wd = work
    path = f"{wd}/functions/hello/function.yaml"
    with open(path, "a") as f:
        f.write("environments:\n  prod: {approval: required}\n")
    git(wd, "commit", "--quiet", "-am", "prod needs approval")
    git(wd, "push", "--quiet", "origin", "main")
    main_before = git(origin, "rev-parse", "main")
    r = fnops("promote", "hello", "--from", "dev", "--to", "prod", "--github-repo", "acme/functions", cwd=wd,
              env={"GITHUB_API_URL": gh.url, "GITOPS_TOKEN": "ghp_pr_token"})
    assert r.returncode == 0, r.stderr
    assert git(origin, "rev-parse", "main") == main_before
    assert [pr["head"]["ref"] for pr in gh.pulls] == ["fnops/prod/hello"]
    assert gh.pulls[0]["title"].startswith("fnops: promote hello to prod")


ACTIONS_MAY_NOT = {"message": "GitHub Actions is not permitted to create or approve pull requests.",
                   "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request"}


def test_pr_creation_forbidden_for_actions_leaves_no_branch_and_names_the_setting(gh, work):
    """Default repository settings: GITHUB_TOKEN may not open pull requests (403). The review
    branch was already pushed; it is deleted again, and the one line says what to enable."""
    origin, wd = work
    gh.refusals[("POST", "/repos/{owner}/{repo}/pulls")] = (403, {}, ACTIONS_MAY_NOT)
    main_before = git(origin, "rev-parse", "main")
    r = bump(wd, gh, f"{REPO}:sha-1a2b3c4@{D('b')}")
    assert r.returncode == 1, r.stderr
    line, = r.stderr.strip().splitlines()
    assert "403 GitHub Actions is not permitted to create or approve pull requests" in line
    assert "Allow GitHub Actions to create and approve pull requests" in line and "GitHub App" in line
    assert "review branch fnops/prod/hello was deleted" in line
    assert git(origin, "branch", "--list", "fnops/*") == ""  # no stray branch
    assert git(origin, "rev-parse", "main") == main_before and gh.pulls == []
    assert any(req[:2] == ("POST", "/repos/acme/functions/pulls") for req in gh.requests)  # it was tried


def test_a_forbidden_pr_puts_an_existing_review_branch_back(gh, work):
    """A review branch left from a closed PR: the new commit on it is taken back, the branch
    stays at its old tip."""
    origin, wd = work
    assert bump(wd, gh, f"{REPO}:sha-1a2b3c4@{D('b')}").returncode == 0
    gh.pulls[0]["state"] = "closed"
    old_tip = git(origin, "rev-parse", "fnops/prod/hello")
    gh.refusals[("POST", "/repos/{owner}/{repo}/pulls")] = (403, {}, ACTIONS_MAY_NOT)
    r = bump(wd, gh, f"{REPO}:sha-2b3c4d5@{D('c')}")
    assert r.returncode == 1 and "was reset to its previous tip" in r.stderr, r.stderr
    assert git(origin, "rev-parse", "fnops/prod/hello") == old_tip


def test_a_job_without_pull_requests_write_is_told_the_permission(gh, work):
    origin, wd = work
    gh.refusals[("POST", "/repos/{owner}/{repo}/pulls")] = (
        403, {}, {"message": "Resource not accessible by integration",
                  "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request"})
    r = bump(wd, gh, f"{REPO}:sha-1a2b3c4@{D('b')}")
    assert r.returncode == 1 and "pull-requests: write" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert git(origin, "branch", "--list", "fnops/*") == ""


def test_a_pr_opened_with_github_token_says_its_checks_will_not_run(gh, work):
    origin, wd = work
    r = fnops("bump", "hello", "--env", "prod", "--image", f"{REPO}:sha-1a2b3c4@{D('b')}", "--source-commit",
              head(wd), "--mode", "pr", "--github-repo", "acme/functions", cwd=wd,
              env={"GITHUB_API_URL": gh.url, "GITOPS_TOKEN": "ghp_pr_token", "GITHUB_ACTIONS": "true",
                   "FNOPS_TOKEN_IS_GITHUB_TOKEN": "true"})
    assert r.returncode == 0, r.stderr
    notice = [line for line in r.stderr.splitlines() if line.startswith("::notice::")]
    assert len(notice) == 1 and "GITHUB_TOKEN" in notice[0] and "GitHub App" in notice[0]
