"""Distinct types for values that must never be mixed up.

A Git SHA is not an image digest, and a repository is not a pinned reference: each has
its own type with its own parser, so a wrong value fails where it enters, not where it is
used.
"""

from __future__ import annotations

from .lazyre import LazyRe
from collections import namedtuple

_HEX64 = LazyRe(r"[0-9a-f]{64}")
_GITSHA = LazyRe(r"[0-9a-f]{40}([0-9a-f]{24})?")  # SHA-1 or SHA-256 object names
# docker/distribution reference grammar, simplified to what registries accept.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_REPO = LazyRe(rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = LazyRe(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")  # the reference grammar's \w is ASCII; Python's takes '٣'


class Digest(str):
    """`sha256:<64 hex>` content digest of an image manifest."""

    def __new__(cls, value: str) -> "Digest":
        algo, _, hexpart = value.partition(":")
        if algo != "sha256" or not _HEX64.fullmatch(hexpart):
            raise ValueError(f"'{value}' is not a digest (want sha256:<64 lowercase hex>)")
        return super().__new__(cls, value)


class GitSha(str):
    """A full Git object name (40 hex for SHA-1 repositories, 64 for SHA-256)."""

    def __new__(cls, value: str) -> "GitSha":
        if not _GITSHA.fullmatch(value):
            raise ValueError(f"'{value}' is not a full Git commit SHA (40 lowercase hex)")
        return super().__new__(cls, value)

    @property
    def short(self) -> str:
        return self[:7]


class Repository(str):
    """An image repository without tag or digest: `registry/path/name`."""

    def __new__(cls, value: str) -> "Repository":
        if len(value) > 255 or not _REPO.fullmatch(value):
            raise ValueError(f"'{value}' is not an image repository (like ghcr.io/acme/hello)")
        return super().__new__(cls, value)


class PinnedImage(namedtuple("PinnedImage", "repository tag digest")):
    """`repository[:tag]@sha256:…` — what a release pins. Never a bare tag."""

    __slots__ = ()

    @classmethod
    def parse(cls, ref: str) -> "PinnedImage":
        name, at, digest = ref.partition("@")
        if not at:
            raise ValueError(f"'{ref}' is not pinned by digest (want <repository>[:tag]@sha256:<64 hex>)")
        tag = None
        slash = name.rfind("/")
        colon = name.rfind(":")
        if colon > slash:
            name, tag = name[:colon], name[colon + 1 :]
            if not _TAG.fullmatch(tag):
                raise ValueError(f"'{tag}' is not a valid image tag")
        return cls(Repository(name), tag, Digest(digest))

    def __str__(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        return f"{self.repository}{tag}@{self.digest}"
