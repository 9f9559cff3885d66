"""One channel for the errors a user can fix (bad data, checkpoints, flags, sizes): library code
raises a ``UserError``; the entry points print it as one line and exit with status 2."""
import contextlib
import sys
from typing import Iterator


class UserError(RuntimeError):
    """An input the user can fix; its message names the file, list line or flag."""


def user_message(exc: BaseException) -> str:
    """The original message, also when a DataLoader worker re-raised it wrapped in a traceback."""
    text = str(exc).strip()
    marker = f"{type(exc).__name__}: "
    if "Original Traceback" in text and marker in text:
        text = text.rsplit(marker, 1)[1]
    return text


@contextlib.contextmanager
def exit_on_user_error() -> Iterator[None]:
    """Print ``error: <message>`` and exit with status 2 on a user error; Ctrl-C exits with 130."""
    try:
        yield
    except UserError as exc:
        print(f"error: {user_message(exc)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


class InputSizeError(UserError):
    """An image size a network cannot take (too small, or not a multiple of its downsampling)."""
