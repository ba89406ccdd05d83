"""The per-label records of the structure library (ref §4.1, §4.2); descriptors in angstrom.

One :class:`LabelRecord` holds what a label's structure files give: its composition and the
mean shape descriptors. The two records built on it add their own part:

* :class:`StructureObservation` (what ``read_library`` returns per label folder): the files
  behind the record, the spread of the descriptors and the label mismatches;
* :class:`TrainingRow` (what the prediction trains on): the label's row of the dynamics
  lifetime table (ref §3.7), with the stability weight (ref §4.2), a missing lifetime taken as 0::

    w = 1 + max(file_count, 0)/10 + max(completed_lifetime_count, 0)/5
          + 5 max(mean_count_per_frame, 0) + 5 max(occupancy_fraction, 0) + mean_lifetime_fs/100
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

_R = TypeVar("_R", bound="LabelRecord")


@dataclass
class LabelRecord:
    """One label of the structure library: composition and mean descriptors (angstrom).

    element_counts : modal tracked composition over the readable files.
    node_count : sum of node-element counts; cluster_size : sum of label-element counts.
    file_count : files listed (readable or not).
    mean_* : means of the descriptors over the readable files.
    """

    label: str
    node_count: int
    element_counts: dict
    cluster_size: int
    file_count: int
    representative_path: str | None
    structure_dir: str
    mean_atom_count: float
    mean_radius_of_gyration: float
    mean_max_radius: float
    mean_semiaxis_a: float
    mean_semiaxis_b: float
    mean_semiaxis_c: float

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls: type[_R], data: Mapping) -> _R:
        """The record of a ``to_dict`` mapping (keys that are not fields are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def label_fields(self) -> dict:
        """The :class:`LabelRecord` part as a dict (a fresh ``element_counts`` dict)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(LabelRecord)}
        out["element_counts"] = dict(self.element_counts)
        return out


@dataclass
class StructureObservation(LabelRecord):
    """One label folder of the structure library (ref §4.1): the :class:`LabelRecord` and

    readable_count : files read; motifs : ``motif_*`` sub-folder names; files : every file listed.
    std_* : population std of the descriptors over the readable files.
    mismatched_file_count : readable files whose label composition differs from the folder label.
    """

    readable_count: int
    motifs: list
    files: list
    std_radius_of_gyration: float = 0.0
    std_max_radius: float = 0.0
    mismatched_file_count: int = 0


@dataclass
class TrainingRow(LabelRecord):
    """A training observation: the :class:`LabelRecord` of a library label joined with its row of
    the dynamics lifetime table (ref §4.2; rates per ps, lifetimes in fs).

    Dynamics fields are zero (lifetime None) for a label never seen in the frames.
    """

    total_observations: int = 0
    occupied_frames: int = 0
    mean_count_per_frame: float = 0.0
    occupancy_fraction: float = 0.0
    association_events: int = 0
    dissociation_events: int = 0
    association_rate_per_ps: float = 0.0
    dissociation_rate_per_ps: float = 0.0
    completed_lifetime_count: int = 0
    window_truncated_lifetime_count: int = 0
    mean_lifetime_fs: float | None = None
    std_lifetime_fs: float | None = None
    in_dynamics: bool = True

    @property
    def stability_weight(self) -> float:
        """Ref §4.2 stability weight (dimensionless, >= 1)."""
        lifetime = self.mean_lifetime_fs if self.mean_lifetime_fs is not None else 0.0
        return (
            1.0
            + max(self.file_count, 0) / 10.0
            + max(self.completed_lifetime_count, 0) / 5.0
            + 5.0 * max(self.mean_count_per_frame, 0.0)
            + 5.0 * max(self.occupancy_fraction, 0.0)
            + lifetime / 100.0
        )

    @property
    def observed_weight(self) -> float:
        """Ref §4.9 population weight ``max(mean_count, 0) * max(occupancy, 0.05)``."""
        return max(self.mean_count_per_frame, 0.0) * max(self.occupancy_fraction, 0.05)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["stability_weight"] = self.stability_weight
        return d
