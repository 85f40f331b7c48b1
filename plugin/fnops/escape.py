"""Text that leaves fnops for another parser: GitHub Actions workflow commands and Slack
mrkdwn. Every value read from a repository or a webhook goes through here first, so it
cannot become a command, a mention or a link."""

from __future__ import annotations


# The runner reads the legacy `##[command]` form anywhere in a line (actions/runner
# ActionCommand.TryParse), so a value quoted in a message must not carry it: the second `#`
# is written as an escape, as other characters a value may not show raw are.
_LEGACY_COMMAND = ("##[", "#\\x23[")


def _escaped(ch: str) -> str:
    return f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"


def printable(text: str) -> str:
    """One line of visible text: control characters (and Unicode line/bidi controls) are
    written as escapes, so a value cannot start a new log line, reorder what is shown, or
    hold a workflow command."""
    text = str(text)
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() or ch == " " else _escaped(ch) for ch in text)
    return text.replace(*_LEGACY_COMMAND)


def shown(value, limit: int = 60) -> str:
    """A value quoted in an error message: one line, at most `limit` characters, no
    workflow command."""
    text = value if isinstance(value, str) else repr(value)
    if not (text.isascii() and text.isprintable()):
        text = text.encode("unicode_escape").decode("ascii")
    text = text.replace(*_LEGACY_COMMAND)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def terminal_text(text: str) -> str:
    """Text for a terminal: every control character but newline and tab (escape sequences
    that clear the screen, retitle the window or set the clipboard, a carriage return that
    overwrites the line, C1 controls, Unicode bidi and line controls) written as a visible
    escape, so the text cannot drive the terminal it is shown on."""
    text = str(text).replace("\r\n", "\n")
    if text.replace("\n", "").replace("\t", "").isprintable():
        return text
    return "".join(ch if ch in "\n\t" or ch.isprintable() or ch == " " else _escaped(ch) for ch in text)


def workflow_data(text: str) -> str:
    """The message part of `::cmd props::message` (actions/toolkit escapeData)."""
    return str(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def workflow_property(text: str) -> str:
    """A property value of `::cmd k=v,…::` (actions/toolkit escapeProperty)."""
    return workflow_data(text).replace(":", "%3A").replace(",", "%2C")


def stop_commands_token() -> str:
    """A fresh token for `::stop-commands::` (the docs: random and unique for each use). The
    runner masks tokens longer than 6 characters, so the log shows `::***::`."""
    import secrets

    return f"fnops{secrets.token_hex(16)}"


def untrusted_lines(lines) -> list[str]:
    """Text fnops did not write (a builder's output: a function folder's own code runs there)
    made safe to print in a GitHub Actions log: between `::stop-commands::<token>` and
    `::<token>::`, with a new random token, so no line of it is read as a workflow command.

    Prefixing lines does not do it: the runner trims leading whitespace before matching `::`
    and matches the legacy `##[command]` form anywhere in a line (actions/runner
    ActionCommand.TryParseV2 / TryParse). Print the result on one stream (the runner reads
    stdout and stderr separately), with nothing else between its first and last line."""
    token = stop_commands_token()
    return [f"::stop-commands::{token}", *(str(x).replace("\r", "") for x in lines), f"::{token}::"]


class UntrustedStream:
    """Untrusted lines streamed to stderr as they come, inside one `::group::` and one
    stop-commands region shared by every thread writing at the same time (builds run in
    parallel: regions of their own would interleave, and a line of one build could fall
    between another's resume and its next stop). The region opens with the first writer and
    closes with the last; each line is written whole, under a lock."""

    def __init__(self, title: str, stream=None):
        import threading

        self.title = title
        self._stream = stream
        self._lock = threading.Lock()
        self._open = 0
        self._token: str | None = None

    def _out(self):
        import sys

        return self._stream or sys.stderr

    def __enter__(self):
        with self._lock:
            if self._open == 0:
                self._token = stop_commands_token()
                self._out().write(f"::group::{workflow_data(self.title)}\n::stop-commands::{self._token}\n")
                self._out().flush()
            self._open += 1
        return self

    def write(self, line: str) -> None:
        with self._lock:
            self._out().write(str(line).replace("\r", "").rstrip("\n").replace("\n", " ") + "\n")
            self._out().flush()

    def __exit__(self, *exc):
        with self._lock:
            self._open -= 1
            if self._open == 0:
                self._out().write(f"::{self._token}::\n::endgroup::\n")
                self._out().flush()
                self._token = None
        return False


def slack_text(text: str) -> str:
    """Slack's three control characters, so `<!channel>` or `<https://x|y>` stay text."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
