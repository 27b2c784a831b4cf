"""Logging for `dpa serve`: uvicorn's, with signing tokens cut out of access-log lines (they are secrets)."""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

from uvicorn.config import LOGGING_CONFIG

_SIGN_TOKEN = re.compile(r"(/sign/)[^/?\s\"]+")


def redact(text: str) -> str:
    return _SIGN_TOKEN.sub(r"\1<redacted>", text)


class RedactSigningTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def log_config() -> dict[str, Any]:
    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_tokens"] = {"()": "dpa_service.logs.RedactSigningTokens"}
    config["handlers"]["access"]["filters"] = ["redact_tokens"]
    return config
