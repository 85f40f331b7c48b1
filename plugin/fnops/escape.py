"""Text that leaves fnops for another parser: GitHub Actions workflow commands and Slack
mrkdwn. Every value read from a repository or a webhook goes through here first, so it
cannot become a command, a mention or a link."""

from __future__ import annotations


_INVISIBLE = {0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}  # line breaks, bidi controls


def printable(text: str) -> str:
    """One line of visible text: control characters (and Unicode line/bidi controls) are
    written as escapes, so a value cannot start a new log line or reorder what is shown."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch == " " else
                   (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}") for ch in text)


def shown(value, limit: int = 60) -> str:
    """A value quoted in an error message: one line, at most `limit` characters."""
    text = value if isinstance(value, str) else repr(value)
    if not (text.isascii() and text.isprintable()):
        text = text.encode("unicode_escape").decode("ascii")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def workflow_data(text: str) -> str:
    """The message part of `::cmd props::message` (actions/toolkit escapeData)."""
    return str(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def workflow_property(text: str) -> str:
    """A property value of `::cmd k=v,…::` (actions/toolkit escapeProperty)."""
    return workflow_data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_command_safe(line: str) -> str:
    """A log line printed as is: one that starts with `::` would be read as a command
    (`::stop-commands::`, `::add-mask::`), so it is prefixed with a space."""
    line = str(line).replace("\r", "")
    return " " + line if line.lstrip().startswith("::") else line


def slack_text(text: str) -> str:
    """Slack's three control characters, so `<!channel>` or `<https://x|y>` stay text."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
