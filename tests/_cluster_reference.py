"""Slow, obviously-correct reference for cluster extraction (pure numpy + Python BFS).

Used only by the tests. Definitions follow docs/clusters.md:
all-pairs minimum image (exact for triclinic: round in fractional space, then try the 27
neighbouring images), bonds between node/linker atoms with d <= positive level-0 cutoff,
components by BFS, clusters ordered by (has no node, smallest node or atom index),
level-0 shells to the nearest core atom (ties: smaller index), level-L shells around node
atoms, unwrapping by BFS accumulating minimum-image vectors, percolation when a closing
bond disagrees with the accumulated displacement by a lattice vector.
"""
from __future__ import annotations

import itertools
from collections import deque

import numpy as np


def minimum_image_all(pos, H):
    """dr[i, j] = minimum image of pos[j] - pos[i], shape (n, n, 3)."""
    dr = pos[None, :, :] - pos[:, None, :]
    if H is None:
        return dr
    inv = np.linalg.inv(H)
    f = dr @ inv
    f -= np.rint(f)
    base = f @ H
    shifts = np.array(list(itertools.product((-1, 0, 1), repeat=3)), dtype=float) @ H
    cand = base[:, :, None, :] + shifts[None, None, :, :]
    k = np.argmin(np.einsum("ijkl,ijkl->ijk", cand, cand), axis=-1)
    return np.take_along_axis(cand, k[:, :, None, None], axis=2)[:, :, 0, :]


def reference_clusters(symbols, pos, H, rules):
    """List of dicts {core, shell (sorted lists), label counts, percolating, unwrapped (dict atom->xyz)}."""
    pos = np.asarray(pos, float)
    n = len(symbols)
    role = {}
    for r, name in enumerate(("node", "linker", "shell")):
        for el, res in getattr(rules, name):
            assert res is None
            for k in range(n):
                if symbols[k] == el:
                    role[k] = r
    dr = minimum_image_all(pos, H)
    dist = np.linalg.norm(dr, axis=-1)

    def cut(a, b, level=0):
        return rules.cutoff(symbols[a], symbols[b], level)

    core = [k for k in range(n) if role.get(k, -1) in (0, 1)]
    adj = {k: [] for k in core}
    for a in core:
        for b in core:
            if a < b:
                c = cut(a, b)
                if c and dist[a, b] <= c:
                    adj[a].append(b)
                    adj[b].append(a)
    seen = set()
    comps = []
    for s in core:
        if s in seen:
            continue
        comp, q = [], deque([s])
        seen.add(s)
        while q:
            x = q.popleft()
            comp.append(x)
            for y in adj[x]:
                if y not in seen:
                    seen.add(y)
                    q.append(y)
        comps.append(sorted(comp))

    def key(comp):
        nodes = [k for k in comp if role[k] == 0]
        return (0, nodes[0]) if nodes else (1, comp[0])

    comps.sort(key=key)
    cluster_of = {k: ci for ci, comp in enumerate(comps) for k in comp}
    out = []
    for comp in comps:
        # unwrap by BFS from the smallest member
        u = {comp[0]: pos[comp[0]].copy()}
        q = deque([comp[0]])
        while q:
            x = q.popleft()
            for y in sorted(adj[x]):
                if y not in u:
                    u[y] = u[x] + dr[x, y]
                    q.append(y)
        perc = False
        for x in comp:
            for y in adj[x]:
                if np.linalg.norm(u[y] - u[x] - dr[x, y]) > 1e-6:
                    perc = True
        out.append({"core": comp, "shell": {}, "percolating": perc, "u": u})

    # level-0 shells: nearest core atom
    shells = [k for k in range(n) if role.get(k) == 2]
    taken = set()
    for s in shells:
        best = None
        for c in core:
            cc = cut(c, s)
            if cc and dist[c, s] <= cc:
                cand = (dist[c, s], c)
                best = cand if best is None or cand < best else best
        if best is not None:
            c = best[1]
            cl = out[cluster_of[c]]
            cl["shell"][s] = 0
            cl["u"][s] = cl["u"][c] + dr[c, s]
            taken.add(s)
    for level in rules.shell_levels:
        newly = set()
        for s in shells:
            if not rules.shared_shells and s in taken:
                continue
            hits = []
            for c in core:
                if role[c] != 0:
                    continue
                cc = rules.cutoff(symbols[c], symbols[s], level)
                if cc and dist[c, s] <= cc:
                    hits.append((dist[c, s], c))
            if not hits:
                continue
            if rules.shared_shells:
                by_cluster = {}
                for h in sorted(hits):
                    by_cluster.setdefault(cluster_of[h[1]], h)
                for ci, (dd, c) in by_cluster.items():
                    cl = out[ci]
                    if s not in cl["shell"]:
                        cl["shell"][s] = level
                        cl["u"][s] = cl["u"][c] + dr[c, s]
            else:
                dd, c = min(hits)
                cl = out[cluster_of[c]]
                cl["shell"][s] = level
                cl["u"][s] = cl["u"][c] + dr[c, s]
                newly.add(s)
        taken |= newly
    for cl in out:
        counts = {}
        members = list(cl["core"]) + (sorted(k for k in cl["shell"]) if rules.shells_in_label else [])
        for k in members:
            counts[symbols[k]] = counts.get(symbols[k], 0) + 1
        cl["counts"] = counts
        cl["shell_sorted"] = sorted(cl["shell"])
    return out
