"""Log lines for every process (`dpa serve`, its uvicorn access log, `dpa worker`): one JSON object per line
outside development, readable text in development (DPA_LOG_FORMAT=json|text overrides).

Each line carries `time`, `level`, `logger`, `message` and the `request_id` of the request it was written for
(the `X-Request-ID` the caller sent, if sane, else a generated one, echoed in the response), plus `tenant_id` and
`user_id` once authentication knows them (core.log_context). Signing tokens are cut out of access-log lines: they
are secrets.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import re
import sys
from typing import Any, TextIO

from uvicorn.config import LOGGING_CONFIG

from dpa_service.core import log_context
from dpa_service.core.settings import Settings

_SIGN_TOKEN = re.compile(r"(/sign/)[^/?\s\"]+")
_CONTEXT_FIELDS = ("request_id", "tenant_id", "user_id")
# Attributes every LogRecord has: whatever else a caller passed with `extra=` is worth keeping on the line.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName", "color_message",  # uvicorn adds color_message for its own terminal output
}  # fmt: skip
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"


def redact(text: str) -> str:
    return _SIGN_TOKEN.sub(r"\1<redacted>", text)


class RedactSigningTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


class RequestContext(logging.Filter):
    """Stamp the request's id, tenant and user on the record when it is handled, in the request's own context
    (a formatter may run later, or elsewhere)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = log_context.current()
        for name in _CONTEXT_FIELDS:
            if getattr(record, name, None) is None:
                setattr(record, name, getattr(context, name, None) if context else None)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line; the access log's parts (method, path, status, client) as fields of their own."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for name in ("tenant_id", "user_id"):
            if (value := getattr(record, name, None)) is not None:
                line[name] = value
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, _version, status = record.args
            line.update(client=client, method=method, path=path, status=status)
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line and key not in _CONTEXT_FIELDS and not key.startswith("_"):
                line[key] = value if isinstance(value, str | int | float | bool | None) else repr(value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(_TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "request_id", None) is None:
            record.request_id = "-"
        return super().format(record)


class StandardStream(logging.StreamHandler[TextIO]):
    """A handler on sys.stderr (or sys.stdout) as it is when each line is written, not when logging was set up:
    whoever replaces the stream later (a test capturing output, a daemon redirecting it) still gets the lines."""

    def __init__(self, to: str = "stderr") -> None:
        super().__init__()
        self._stream_name = to

    @property
    def stream(self) -> TextIO:
        stream: TextIO = getattr(sys, self._stream_name)
        return stream

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass  # StreamHandler.__init__ assigns one; the current one is always used


def formatter(settings: Settings) -> logging.Formatter:
    return JsonFormatter() if settings.log_format_in_use == "json" else TextFormatter()


def handler(settings: Settings, stream: str = "stderr") -> logging.Handler:
    """The handler every process logs through: the request context stamped, the chosen format."""
    made = StandardStream(stream)
    made.addFilter(RequestContext())
    made.setFormatter(formatter(settings))
    made._dpa = True  # type: ignore[attr-defined]  # ours: configure() replaces it instead of adding another
    return made


def configure(settings: Settings) -> None:
    """Send the root logger's lines through our handler, unless something else already configured logging (a test
    run's capture, an application embedding ours): like logging.basicConfig, which this replaces."""
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, "_dpa", False)]
    if root.handlers and not ours:
        return
    for old in ours:
        root.removeHandler(old)
    root.addHandler(handler(settings))
    root.setLevel(settings.log_level)


def log_config(settings: Settings) -> dict[str, Any]:
    """uvicorn's logging configuration with our formatter and the request context on its lines (the access log
    stays on stdout, the server's own lines on stderr, as uvicorn has them)."""
    config = copy.deepcopy(LOGGING_CONFIG)
    shape = "json" if settings.log_format_in_use == "json" else "text"
    config["formatters"] = {
        "line": {"()": f"dpa_service.logs.{'JsonFormatter' if shape == 'json' else 'TextFormatter'}"}
    }
    config["filters"] = {
        "redact_tokens": {"()": "dpa_service.logs.RedactSigningTokens"},
        "request_context": {"()": "dpa_service.logs.RequestContext"},
    }
    config["handlers"] = {
        "default": {"()": "dpa_service.logs.StandardStream", "to": "stderr", "formatter": "line",
                    "filters": ["request_context"]},
        "access": {"()": "dpa_service.logs.StandardStream", "to": "stdout", "formatter": "line",
                   "filters": ["redact_tokens", "request_context"]},
    }  # fmt: skip
    return config
