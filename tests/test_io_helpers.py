"""The shared persistence helpers (_io.py): atomic writes, JSON of numpy values, CSV, pandas."""
from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from clusterdynamicsml._io import (
    atomic_path,
    atomic_write,
    csv_text,
    dumps_json,
    read_json,
    to_jsonable,
    to_pandas,
    write_csv,
    write_json,
)


def test_atomic_write_replaces_whole_file_and_leaves_nothing_on_failure(tmp_path):
    p = atomic_write(tmp_path / "sub" / "a.txt", "one\r\ntwo\n")
    assert p.read_bytes() == b"one\r\ntwo\n"  # newlines untranslated, folder created
    assert oct(p.stat().st_mode & 0o777) == oct(0o644)
    with pytest.raises(RuntimeError), atomic_path(p) as tmp:
        assert tmp.suffix == ".txt" and tmp.parent == p.parent and tmp.name.startswith(".a.")
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert p.read_bytes() == b"one\r\ntwo\n"
    assert sorted(os.listdir(p.parent)) == ["a.txt"]  # no temporary file left behind
    atomic_write(p, b"\x00\x01")
    assert p.read_bytes() == b"\x00\x01"


def test_json_of_numpy_paths_dataclasses_and_nan(tmp_path):
    @dataclasses.dataclass
    class D:
        x: np.ndarray
        y: float

    obj = {1: np.float32(0.5), "arr": np.arange(3), "p": Path("/a/b"), "d": D(np.array([[1.0]]), float("inf")),
           "t": (np.int64(2), None), "nan": float("nan")}
    assert to_jsonable(obj) == {"1": 0.5, "arr": [0, 1, 2], "p": "/a/b", "d": {"x": [[1.0]], "y": None},
                                "t": [2, None], "nan": None}
    assert np.isnan(to_jsonable(float("nan"), nan_as_null=False))
    assert to_jsonable(object, fallback=repr) == repr(object)
    text = dumps_json({"a": np.float64(1.5)})
    assert text == '{\n "a": 1.5\n}\n'
    p = write_json(tmp_path / "x.json", obj)
    assert read_json(p)["arr"] == [0, 1, 2]
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="bad.json: not valid JSON"):
        read_json(tmp_path / "bad.json")


def test_csv_rows_columns_and_float_format(tmp_path):
    rows = [{"a": 1, "b": 0.1 + 0.2}, {"b": None, "c": float("nan")}]
    assert csv_text(rows) == "a,b,c\n1,0.30000000000000004,\n,,nan\n"
    assert csv_text(rows, float_format="%.12g") == "a,b,c\n1,0.3,\n,,\n"
    assert csv_text([[1, "x,y"]], ["n", "s"], lineterminator="\r\n") == 'n,s\r\n1,"x,y"\r\n'
    with pytest.raises(ValueError, match="need columns"):
        csv_text([[1, 2]])
    p = write_csv(tmp_path / "t.csv", rows, ["b", "a"])
    assert p.read_text() == "b,a\n0.30000000000000004,1\n,\n"


def test_to_pandas_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas -> ImportError
    with pytest.raises(ImportError, match="pip install pandas"):
        to_pandas([{"a": 1}])


def test_results_share_to_pandas(tmp_path):
    pd = pytest.importorskip("pandas")  # optional third-party dependency, not our package
    from clusterdynamicsml.dynamics import analyze_dynamics
    from clusterdynamicsml.io.frames import Frame
    from clusterdynamicsml.rules import ClusterRules

    rules = ClusterRules(node=["Na"], linker=["Cl"], cutoffs={("Na", "Cl"): 2.6}, pbc=False)
    frames = [Frame(index=k, source_index=k, time_fs=10.0 * k, symbols=["Na", "Cl"],
                    positions=np.array([[0, 0, 0], [2.0 + 1.0 * (k % 2), 0, 0]], float), box=None) for k in range(4)]
    dyn = analyze_dynamics(frames, rules, timestep_fs=10.0)
    df = dyn.to_pandas()
    assert isinstance(df, pd.DataFrame) and sorted(df["label"]) == sorted(dyn.labels)
    assert list(df.columns[:2]) == ["label", "cluster_size"]
