"""The project layer: the modules of a training script's project, followed across imports.

`Project` finds a file's project (its root, source folders) and loads the project's modules on demand
(read and parsed, never imported or run); `ProjectLinks` answers the analysis's questions about names a
file imports from them (analysis/links.py). See docs/architecture.md, "The project layer".
"""
from .index import Project, ProjectLinks, project_for

__all__ = ["Project", "ProjectLinks", "project_for"]
