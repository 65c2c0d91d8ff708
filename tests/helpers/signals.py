"""Recording the sends of a Django signal for the length of a test."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.dispatch import Signal

#: what one send is recorded as, from (sender, the send's keyword arguments)
Shape = Callable[[Any, dict[str, Any]], Any]


def keyword_arguments(sender: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    return kwargs


class SignalCapture:
    """`events = capture(signal)`: a list that gets one item per send, until close()."""

    def __init__(self) -> None:
        self.connected: list[tuple[Signal, Callable[..., None]]] = []

    def __call__(self, signal: Signal, shape: Shape = keyword_arguments) -> list[Any]:
        events: list[Any] = []

        def receiver(sender: Any, **kwargs: Any) -> None:
            kwargs.pop("signal", None)
            events.append(shape(sender, kwargs))

        signal.connect(receiver, weak=False)
        self.connected.append((signal, receiver))
        return events

    def close(self) -> None:
        for signal, receiver in self.connected:
            signal.disconnect(receiver)
        self.connected = []
