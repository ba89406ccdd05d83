"""Compact label x column count matrices: :class:`LabelCounts` (per-frame and per-bin counts).

A trajectory of F frames and L labels holds only a few labels per frame, so the counts are
stored column by column (a frame or a time bin per column), nonzero entries only, in the
smallest integer types that hold them: ``indptr`` int64 (N + 1,) column offsets, ``indices``
(uint16 below 65,536 labels, else int32) the label row of each entry, sorted within a
column, and ``data`` the counts (the smallest unsigned type that holds the largest): 2 to 4
bytes per label present in a frame plus 8 bytes per frame, where a dense int64 (L, F) matrix
takes 8 L bytes per frame (1,000-atom Pb/I frames: about 28 of 346 labels present a frame,
120 bytes a frame instead of 2,768).

:class:`CountsBuilder` accumulates such a matrix column by column while frames stream in
(no Python object per frame).
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

#: Entries scanned at once when the rows are read label by label (bounds the temporaries).
_ROW_BLOCK_ENTRIES = 1 << 16
#: Entries re-sorted or summed at once (about 30 bytes of temporaries each).
_BLOCK = 1 << 14


def _label_dtype(n_labels: int) -> np.dtype:
    return np.dtype(np.uint16) if n_labels <= np.iinfo(np.uint16).max + 1 else np.dtype(np.int32)


def _count_dtype(top: int) -> np.dtype:
    return np.dtype(np.min_scalar_type(max(int(top), 0)))


class LabelCounts:
    """Non-negative integer counts, ``shape = (n_labels, n_columns)``, stored by column
    (see the module docstring). ``toarray()`` gives the dense int64 matrix."""

    __slots__ = ("shape", "indptr", "indices", "data")

    def __init__(self, shape, indptr, indices, data):
        self.shape = (int(shape[0]), int(shape[1]))
        self.indptr = np.asarray(indptr, dtype=np.int64)
        self.indices = np.asarray(indices)
        self.data = np.asarray(data)
        if self.indptr.shape != (self.shape[1] + 1,) or self.indices.shape != self.data.shape:
            raise ValueError(f"inconsistent compact counts: shape {self.shape}, indptr {self.indptr.shape}, "
                             f"indices {self.indices.shape}, data {self.data.shape}")

    # ---- construction -------------------------------------------------------------
    @classmethod
    def empty(cls, n_labels: int, n_columns: int) -> LabelCounts:
        return cls((n_labels, n_columns), np.zeros(n_columns + 1, np.int64), np.zeros(0, _label_dtype(n_labels)),
                   np.zeros(0, np.uint8))

    @classmethod
    def from_dense(cls, matrix) -> LabelCounts:
        """From a dense (L, N) array of non-negative integers."""
        m = np.asarray(matrix)
        if m.ndim != 2:
            raise ValueError(f"expected a 2-D (labels, columns) array, got shape {m.shape}")
        cols, rows = np.nonzero(m.T)  # column-major order, rows sorted within a column
        data = m[rows, cols]
        if data.size and data.min() < 0:
            raise ValueError("counts must be non-negative")
        indptr = np.zeros(m.shape[1] + 1, dtype=np.int64)
        np.cumsum(np.bincount(cols, minlength=m.shape[1]), out=indptr[1:])
        top = int(data.max()) if data.size else 0
        return cls(m.shape, indptr, rows.astype(_label_dtype(m.shape[0])), data.astype(_count_dtype(top)))

    @classmethod
    def from_rows(cls, rows, n_columns: int) -> LabelCounts:
        """From an iterable of L dense rows (N,) of non-negative integers, one row at a time
        (never the whole dense matrix)."""
        per_row = []
        for r, row in enumerate(rows):
            row = np.asarray(row)
            if row.shape != (n_columns,):
                raise ValueError(f"row {r} has {row.shape} entries, expected ({n_columns},)")
            nz = np.flatnonzero(row)
            per_row.append((nz, row[nz]))
        n_labels = len(per_row)
        cols = np.concatenate([c for c, _ in per_row]) if per_row else np.zeros(0, np.int64)
        labs = np.concatenate([np.full(c.size, r, dtype=np.int64) for r, (c, _) in enumerate(per_row)]) \
            if per_row else np.zeros(0, np.int64)
        vals = np.concatenate([v for _, v in per_row]) if per_row else np.zeros(0, np.int64)
        order = np.lexsort((labs, cols))
        indptr = np.zeros(n_columns + 1, dtype=np.int64)
        np.cumsum(np.bincount(cols, minlength=n_columns), out=indptr[1:])
        if vals.size and vals.min() < 0:
            raise ValueError("counts must be non-negative")
        top = int(vals.max()) if vals.size else 0
        return cls((n_labels, n_columns), indptr, labs[order].astype(_label_dtype(n_labels)),
                   vals[order].astype(_count_dtype(top)))

    # ---- views --------------------------------------------------------------------
    @property
    def nnz(self) -> int:
        return int(self.data.size)

    @property
    def nbytes(self) -> int:
        return int(self.indptr.nbytes + self.indices.nbytes + self.data.nbytes)

    def column_of_entries(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Column (int64) of each entry of the columns ``start .. stop-1``."""
        stop = self.shape[1] if stop is None else stop
        return np.repeat(np.arange(start, stop, dtype=np.int64), np.diff(self.indptr[start:stop + 1]))

    def toarray(self) -> np.ndarray:
        """The dense int64 (L, N) matrix (materialises L x N)."""
        out = np.zeros(self.shape, dtype=np.int64)
        out[self.indices, self.column_of_entries()] = self.data
        return out

    def column_sums(self) -> np.ndarray:
        """Sum over labels of each column, int64 (N,) (exact; no temporary of the entries' size)."""
        out = np.zeros(self.shape[1], dtype=np.int64)
        filled = np.flatnonzero(np.diff(self.indptr))
        if filled.size:
            out[filled] = np.add.reduceat(self.data, self.indptr[filled], dtype=np.int64)
        return out

    def row_entries(self) -> np.ndarray:
        """Entries (columns with a nonzero count) of each label, int64 (L,)."""
        out = np.zeros(self.shape[0], dtype=np.int64)
        for p in range(0, self.nnz, _ROW_BLOCK_ENTRIES):
            out += np.bincount(self.indices[p:p + _ROW_BLOCK_ENTRIES], minlength=self.shape[0])
        return out

    def row_sums(self) -> np.ndarray:
        """Sum over columns of each label, int64 (L,) (exact)."""
        out = np.zeros(self.shape[0], dtype=np.int64)
        for p in range(0, self.nnz, _ROW_BLOCK_ENTRIES):
            np.add.at(out, self.indices[p:p + _ROW_BLOCK_ENTRIES],
                      self.data[p:p + _ROW_BLOCK_ENTRIES].astype(np.int64))
        return out

    def rows(self, which=None) -> Iterator[tuple[int, np.ndarray]]:
        """``(row, dense int64 series (N,))`` for each row in ``which`` (default all, ascending),
        computed a group of labels at a time (temporaries of about 30 bytes per entry of the
        group: at most 16k entries or 1/64 of all entries, or one label's; not L x N)."""
        wanted = np.arange(self.shape[0]) if which is None else np.asarray(sorted(set(int(i) for i in which)))
        if wanted.size == 0:
            return
        per_label = self.row_entries()
        cap = max(_BLOCK, self.nnz // 64)
        k = 0
        while k < wanted.size:
            group = [int(wanted[k])]
            size = int(per_label[wanted[k]])
            k += 1
            while k < wanted.size and wanted[k] == group[-1] + 1 and size + per_label[wanted[k]] <= cap:
                group.append(int(wanted[k]))
                size += int(per_label[wanted[k]])
                k += 1
            lo, hi = group[0], group[-1]
            col, lab, val = self._entries_of_rows(lo, hi) if size else (np.zeros(0, np.int64),) * 3
            order = np.argsort(lab, kind="stable")
            lab, col, val = lab[order], col[order], val[order]
            bounds = np.searchsorted(lab, np.arange(lo, hi + 2))
            for j, r in enumerate(group):
                out = np.zeros(self.shape[1], dtype=np.int64)
                a, b = bounds[j], bounds[j + 1]
                out[col[a:b]] = val[a:b]
                yield r, out

    def _entries_of_rows(self, lo: int, hi: int):
        """``(column, row, count)`` of the entries of rows ``lo .. hi``, in storage order, found
        a block of entries at a time (temporaries of the block's size, not of all entries)."""
        cols, labs, vals = [], [], []
        for p in range(0, self.nnz, _ROW_BLOCK_ENTRIES):
            seg = self.indices[p:p + _ROW_BLOCK_ENTRIES]
            hit = np.flatnonzero((seg >= lo) & (seg <= hi))
            if hit.size:
                cols.append(np.searchsorted(self.indptr, p + hit, side="right") - 1)
                labs.append(seg[hit])
                vals.append(self.data[p:p + _ROW_BLOCK_ENTRIES][hit])
        if not cols:
            return np.zeros(0, np.int64), np.zeros(0, self.indices.dtype), np.zeros(0, self.data.dtype)
        return np.concatenate(cols), np.concatenate(labs), np.concatenate(vals)

    def row(self, i: int) -> np.ndarray:
        """One label's dense int64 series (N,)."""
        if not 0 <= int(i) < self.shape[0]:
            raise IndexError(f"row {i} out of range for {self.shape[0]} labels")
        return next(self.rows([int(i)]))[1]

    def columns(self, start: int, stop: int) -> LabelCounts:
        """The columns ``start .. stop-1`` (copies)."""
        p, q = int(self.indptr[start]), int(self.indptr[stop])
        return LabelCounts((self.shape[0], stop - start), self.indptr[start:stop + 1] - p,
                           self.indices[p:q].copy(), self.data[p:q].copy())

    def take_rows(self, order, *, inplace: bool = False) -> LabelCounts:
        """Rows ``order`` (new row k = old row ``order[k]``); rows not listed must be empty.
        Entries are re-sorted within each column, a block of columns at a time; with
        ``inplace`` into this object's own arrays (no second copy of the entries)."""
        order = np.asarray(order, dtype=np.int64)
        new_of_old = np.full(self.shape[0], -1, dtype=np.int64)
        new_of_old[order] = np.arange(order.size)
        dtype = _label_dtype(order.size)
        indices = self.indices if (inplace and self.indices.dtype == dtype) else np.empty(self.nnz, dtype=dtype)
        data = self.data if inplace else np.empty_like(self.data)
        step = max(_BLOCK, self.nnz // 64)
        c = 0
        n_cols = self.shape[1]
        while c < n_cols:  # blocks of whole columns of about `step` entries
            d = int(np.searchsorted(self.indptr, self.indptr[c] + step, side="right")) - 1
            d = min(max(d, c + 1), n_cols)
            p, q = int(self.indptr[c]), int(self.indptr[d])
            new = new_of_old[self.indices[p:q]]
            if new.size and new.min() < 0:
                raise ValueError("take_rows: a dropped row holds counts")
            s = np.lexsort((new, self.column_of_entries(c, d)))
            vals = self.data[p:q][s]
            indices[p:q] = new[s]
            data[p:q] = vals
            c = d
        return LabelCounts((order.size, n_cols), self.indptr if inplace else self.indptr.copy(), indices, data)

    def sum_column_runs(self, group_of_column: np.ndarray, n_groups: int) -> LabelCounts:
        """Columns summed by group (``group_of_column`` non-decreasing, int (N,)): the (L, n_groups)
        counts of each group, e.g. frames into time bins."""
        g = np.asarray(group_of_column, dtype=np.int64)
        n_labels = self.shape[0]
        counts_per_group = np.zeros(n_groups, dtype=np.int64)
        idx_parts, val_parts = [], []
        step = max(_BLOCK, self.nnz // 64)
        c = 0
        n_cols = self.shape[1]
        while c < n_cols:  # blocks ending on a group boundary
            d = int(np.searchsorted(self.indptr, self.indptr[c] + step, side="right")) - 1
            d = min(max(d, c + 1), n_cols)
            d = int(np.searchsorted(g, g[d - 1], side="right"))  # finish the group of column d-1
            p, q = int(self.indptr[c]), int(self.indptr[d])
            key = (g[self.column_of_entries(c, d)] - g[c]) * n_labels + self.indices[p:q]
            uniq, inverse = np.unique(key, return_inverse=True)
            sums = np.zeros(uniq.size, dtype=np.int64)
            np.add.at(sums, inverse, self.data[p:q].astype(np.int64))
            grp = uniq // n_labels + g[c] if n_labels else uniq
            counts_per_group += np.bincount(grp, minlength=n_groups)
            idx_parts.append(uniq % n_labels if n_labels else uniq)
            val_parts.append(sums)
            c = d
        indptr = np.zeros(n_groups + 1, dtype=np.int64)
        np.cumsum(counts_per_group, out=indptr[1:])
        vals = np.concatenate(val_parts) if val_parts else np.zeros(0, np.int64)
        top = int(vals.max()) if vals.size else 0
        idx = np.concatenate(idx_parts) if idx_parts else np.zeros(0, np.int64)
        return LabelCounts((n_labels, n_groups), indptr, idx.astype(_label_dtype(n_labels)),
                           vals.astype(_count_dtype(top)))

    # ---- comparison ---------------------------------------------------------------
    def __eq__(self, other) -> bool:
        if not isinstance(other, LabelCounts):
            return NotImplemented
        return (self.shape == other.shape and np.array_equal(self.indptr, other.indptr)
                and np.array_equal(self.indices, other.indices) and np.array_equal(self.data, other.data))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"LabelCounts(shape={self.shape}, nnz={self.nnz}, {self.nbytes} bytes)"


class _Grow:
    """A 1-D numpy buffer that grows (by half again, into a fresh zeroed buffer: the part not
    yet written is never touched, so it costs address space, not resident memory) and widens
    its dtype when a value does not fit."""

    def __init__(self, dtype, capacity: int = 1024):
        self.a = np.zeros(max(capacity, 16), dtype=dtype)
        self.n = 0

    def reserve(self, capacity: int) -> None:
        if capacity > self.a.size:
            grown = np.zeros(capacity, dtype=self.a.dtype)
            grown[:self.n] = self.a[:self.n]
            self.a = grown

    def extend(self, values: np.ndarray, top: int | None = None) -> None:
        if top is not None and top > np.iinfo(self.a.dtype).max:
            self.a = self.a.astype(_count_dtype(top) if self.a.dtype.kind == "u" else np.int64)
        need = self.n + values.size
        if need > self.a.size:
            self.reserve(max(need, self.a.size + self.a.size // 2))
        self.a[self.n:need] = values
        self.n = need

    def take(self) -> np.ndarray:
        self.a.resize(self.n, refcheck=False)
        out, self.a = self.a, np.zeros(0, self.a.dtype)
        return out


class CountsBuilder:
    """Accumulates a :class:`LabelCounts` column by column (``add_column`` / ``add_columns``)
    with labels numbered in first-appearance order; ``finish(n_labels)`` returns it with the
    entries of each column in that order (:meth:`LabelCounts.take_rows` sorts them)."""

    def __init__(self, n_columns_hint: int = 1024):
        self.indptr = _Grow(np.int64, n_columns_hint + 1)
        self.indptr.extend(np.zeros(1, np.int64))
        self.indices = _Grow(np.uint16, 16 * n_columns_hint)
        self.data = _Grow(np.uint8, 16 * n_columns_hint)

    @property
    def n_columns(self) -> int:
        return self.indptr.n - 1

    def reserve(self, n_entries: int) -> None:
        """Room for ``n_entries`` entries in all (an estimate: more still fit)."""
        self.indices.reserve(n_entries)
        self.data.reserve(n_entries)

    def add_columns(self, per_column: np.ndarray, indices: np.ndarray, data: np.ndarray) -> None:
        """Append columns: ``per_column`` entries each (int (n,)), then their label indices and counts."""
        if indices.size and int(indices.max()) > np.iinfo(self.indices.a.dtype).max:
            self.indices.a = self.indices.a.astype(np.int32)
        top = int(data.max()) if data.size else 0
        self.indices.extend(indices)
        self.data.extend(data, top)
        last = int(self.indptr.a[self.indptr.n - 1])
        self.indptr.extend(last + np.cumsum(per_column, dtype=np.int64))

    def finish(self, n_labels: int) -> LabelCounts:
        n = self.n_columns
        indptr = self.indptr.take()
        return LabelCounts((n_labels, n), indptr, self.indices.take(), self.data.take())
