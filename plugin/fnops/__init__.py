"""fnops: push a function folder; build, pin, render and report the rest as code.

The public API is small and stable; everything else is internal:

    from fnops import load_function, load_release_for, render_objects, RenderOptions
"""

from .errors import FnopsError, PermanentError, Problem, SpecError, TemporaryError, UsageError
from .render import RenderOptions, dump, render_objects
from .spec import load_function, load_release_for, validate_folder
from .types import Digest, GitSha, PinnedImage, Repository

__version__ = "0.1.0"

__all__ = [
    "FnopsError", "PermanentError", "Problem", "SpecError", "TemporaryError", "UsageError",
    "RenderOptions", "dump", "render_objects",
    "load_function", "load_release_for", "validate_folder",
    "Digest", "GitSha", "PinnedImage", "Repository",
]
