"""The analysis model: facts about a training script, no verdicts (see DESIGN.md)."""
from .events import Event, LoopFrame
from .model import ScriptModel

__all__ = ["Event", "LoopFrame", "ScriptModel"]
