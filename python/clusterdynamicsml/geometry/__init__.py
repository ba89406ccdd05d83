"""Periodic cells and the C++ neighbour search."""

from .box import (  # noqa: F401
    Box,
)
from .neighbors import (  # noqa: F401
    connected_components,
    neighbor_pairs,
    neighbor_pairs_typed,
)
