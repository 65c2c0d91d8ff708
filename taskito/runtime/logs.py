"""The worker's named loggers, and `taskito_worker -v` levels for projects that leave them
unconfigured (Django's default LOGGING shows nothing below WARNING)."""

from __future__ import annotations

import logging

#: the loggers an operator filters on; every other taskito logger is a child of `taskito` too
LOGGERS = {
    "taskito.worker": "start, stop, drain, database errors, timeouts",
    "taskito.job": "one line per job event: received, succeeded, retried, failed, dead, ...",
    "taskito.lifeline": "heartbeats, the lifeline lease, rescued jobs, periodic runs",
    "taskito.task": "what tasks log through current_job.log()",
}
#: `-v` -> level of the `taskito` logger (3 also shows other libraries' DEBUG lines)
LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG, 3: logging.DEBUG}
FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
#: set on the handler this module adds, so a second call recognises its own setup
_MARK = "taskito_verbosity"


def project_configured() -> bool:
    """True when the project set a level, a handler or propagate=False on `taskito` or any
    `taskito.*` logger (in LOGGING or in code): then `-v` leaves logging alone. A
    configured root logger does not count; taskito's records still reach its handlers."""
    for name, item in list(logging.root.manager.loggerDict.items()):
        if not isinstance(item, logging.Logger) or getattr(item, _MARK, False):
            continue  # a placeholder, or our own setup from an earlier call
        if (name == "taskito" or name.startswith("taskito.")) and (
                item.level != logging.NOTSET or item.handlers or not item.propagate):
            return True
    return False


def apply_verbosity(verbosity: int) -> bool:
    """Map `-v 0..3` to the level of the `taskito` logger unless the project configured it
    (3: the root logger too, for other libraries' DEBUG lines); when no root handler exists,
    print to stderr. Returns whether it changed anything."""
    if project_configured():
        return False
    level = LEVELS[max(0, min(verbosity, 3))]
    taskito_logger = logging.getLogger("taskito")
    setattr(taskito_logger, _MARK, True)
    taskito_logger.setLevel(level)
    for lg in (taskito_logger, logging.root):  # drop what an earlier call added
        for handler in [h for h in lg.handlers if getattr(h, _MARK, False)]:
            lg.removeHandler(handler)
    target = logging.root if verbosity >= 3 else taskito_logger
    if verbosity >= 3:
        logging.root.setLevel(logging.DEBUG)
    if not logging.root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(FORMAT))
        setattr(handler, _MARK, True)
        target.addHandler(handler)
    return True
