"""Figures (matplotlib, imported when used)."""

