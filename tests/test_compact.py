"""Compact label counts (dynamics.compact): every operation against the dense numpy answer,
the chunk merger in any arrival order, and the block-wise file scan of the run folder."""
from __future__ import annotations

import numpy as np
import pytest

from clusterdynamicsml.dynamics import compact
from clusterdynamicsml.dynamics.compact import CountsBuilder, LabelCounts
from clusterdynamicsml.dynamics.counting import ChunkMerger


def _dense(rng, n_labels=7, n_columns=301, top=5):
    m = rng.integers(0, top + 1, size=(n_labels, n_columns)) * (rng.random((n_labels, n_columns)) < 0.3)
    m[2] = 0  # an empty row
    m[:, 10:14] = 0  # empty columns
    return m


@pytest.fixture(autouse=True)
def _small_blocks(monkeypatch):
    """Blocks of a few entries, so the block-wise paths cross many block boundaries."""
    monkeypatch.setattr(compact, "_BLOCK", 7)
    monkeypatch.setattr(compact, "_ROW_BLOCK_ENTRIES", 5)


def test_label_counts_match_the_dense_matrix():
    rng = np.random.default_rng(1)
    m = _dense(rng)
    c = LabelCounts.from_dense(m)
    assert c.shape == m.shape and c.nnz == np.count_nonzero(m)
    assert c.indices.dtype == np.uint16 and c.data.dtype == np.uint8
    np.testing.assert_array_equal(c.toarray(), m)
    np.testing.assert_array_equal(c.column_sums(), m.sum(axis=0))
    np.testing.assert_array_equal(c.row_sums(), m.sum(axis=1))
    np.testing.assert_array_equal(c.row_entries(), np.count_nonzero(m, axis=1))
    assert [i for i, _ in c.rows()] == list(range(7))
    for i, row in c.rows():
        np.testing.assert_array_equal(row, m[i])
        assert row.dtype == np.int64
    assert [i for i, _ in c.rows([5, 1, 5])] == [1, 5]
    np.testing.assert_array_equal(c.row(3), m[3])
    np.testing.assert_array_equal(c.columns(20, 77).toarray(), m[:, 20:77])
    assert LabelCounts.from_rows(iter(m), m.shape[1]) == c
    order = [4, 0, 6, 1, 3, 5]  # row 2 (empty) dropped
    np.testing.assert_array_equal(c.take_rows(order).toarray(), m[order])
    np.testing.assert_array_equal(c.toarray(), m)  # not in place: unchanged
    g = np.sort(rng.integers(0, 60, size=m.shape[1]))
    summed = c.sum_column_runs(g, 60)
    expected = np.zeros((7, 60), dtype=np.int64)
    np.add.at(expected.T, g, m.T)
    np.testing.assert_array_equal(summed.toarray(), expected)
    assert summed == LabelCounts.from_dense(expected)
    with pytest.raises(ValueError, match="non-negative"):
        LabelCounts.from_dense(-m)
    with pytest.raises(ValueError, match="a dropped row holds counts"):
        c.take_rows([0, 1])


def test_counts_builder_widens_types_and_grows():
    b = CountsBuilder(2)
    b.add_columns(np.array([2, 0]), np.array([0, 3]), np.array([1, 2]))
    b.add_columns(np.array([1]), np.array([70_000]), np.array([300]))
    for _ in range(50):
        b.add_columns(np.array([1]), np.array([1]), np.array([1]))
    c = b.finish(70_001)
    assert c.indices.dtype == np.int32 and c.data.dtype == np.uint16 and c.shape == (70_001, 53)
    assert c.indptr[:4].tolist() == [0, 2, 2, 3] and c.data[:3].tolist() == [1, 2, 300]


@pytest.mark.parametrize("arrival", [[0, 1, 2], [2, 0, 1], [1, 2, 0], [0, 0, 2, 1, 2]])
def test_chunk_merger_takes_chunks_in_any_order(arrival):
    """Chunks of count_chunk (labels in first-appearance order within each chunk) merged in any
    order, a chunk delivered twice ignored: the same per-frame counts as the dense reference."""
    parts = [
        {"start": 0, "stop": 2, "time_fs": [0.0, 1.0], "source_index": [0, 1], "counted": [True, True],
         "labels": ["Pb", "I"], "counts": np.array([[1, 0], [2, 3]], dtype=np.uint8), "percolating": []},
        {"start": 2, "stop": 3, "time_fs": [2.0], "source_index": [2], "counted": [True], "labels": [],
         "counts": np.zeros((1, 0), np.uint8), "percolating": [[2, {"PbI2": 1}]]},
        {"start": 3, "stop": 5, "time_fs": [3.0, 4.0], "source_index": [3, 4], "counted": [True, False],
         "labels": ["I", "Pb2I"], "counts": [[4, 1], [0, 0]], "percolating": [[3, {"PbI2": 2, "Pb": 1}]]},
    ]
    m = ChunkMerger(5)
    for k in arrival:
        m.add(parts[k])
    labels, times, sources, counted, counts = m.finish()
    assert labels == ["Pb", "I", "Pb2I"] and times.tolist() == [0, 1, 2, 3, 4] and sources.tolist() == [0, 1, 2, 3, 4]
    assert counted.tolist() == [True, True, True, True, False]
    np.testing.assert_array_equal(counts.toarray(), [[1, 2, 0, 0, 0], [0, 3, 0, 4, 0], [0, 0, 0, 1, 0]])
    assert m.percolating_frames == 2 and m.percolating_totals == {"PbI2": 3, "Pb": 1}


def test_chunk_merger_reports_a_missing_chunk():
    m = ChunkMerger()
    m.add({"start": 2, "stop": 3, "time_fs": [2.0], "source_index": [2], "counted": [True], "labels": ["I"],
           "counts": [[1]]})
    with pytest.raises(RuntimeError, match="chunks before frame 2 never arrived"):
        m.finish()


@pytest.mark.parametrize("block", [1, 2, 3, 4, 5, 16, 1 << 20])
def test_run_folder_scan_finds_text_across_block_edges(tmp_path, block):
    from clusterdynamicsml.pipeline.outputs import file_mentions as _file_mentions

    p = tmp_path / "x.json"
    p.write_text("a" * 10 + "/run.partial/x" + "b" * 5)
    assert _file_mentions(p, "/run.partial", block=block)
    assert not _file_mentions(p, "/run.partiaX", block=block)
    assert _file_mentions(p, "b", block=block) and _file_mentions(p, "aa/r", block=block)
