"""Exceptions shared by the stages.

``InsufficientDataError`` (a ``ValueError``) says that the input is valid but holds too little to
do what was asked (one observed cluster size cannot be extrapolated; a library with no cluster
holding node atoms cannot train a prediction). A run skips the step that needs the data, with a
warning naming why, and keeps the results of the other steps; a direct API call raises it.
"""
from __future__ import annotations

__all__ = ["InsufficientDataError"]


class InsufficientDataError(ValueError):
    """Valid input that holds too little for the requested computation (see the module doc)."""
