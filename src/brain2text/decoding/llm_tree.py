"""Sentences that share a beginning (an n-best list's do) scored in one pass over their prefix
tree: every distinct prefix is one position of a packed sequence that attends only to its
ancestors, at the position id of its depth, so each token is computed once however many
sentences start with it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class PrefixTree:
    """``tokens[i]`` at depth ``depths[i]`` under ``parents[i]`` (-1: a root); ``paths[k]``
    the node indices of sentence ``k``'s tokens, in order."""

    tokens: tuple[int, ...]
    depths: tuple[int, ...]
    parents: tuple[int, ...]
    paths: tuple[tuple[int, ...], ...]


def prefix_tree(rows: Sequence[Sequence[int]]) -> PrefixTree:
    """The prefix tree of token rows; nodes in order of first appearance (parents first)."""
    index: dict[tuple[int, ...], int] = {}
    tokens: list[int] = []
    depths: list[int] = []
    parents: list[int] = []
    paths = []
    for row in rows:
        path = []
        parent = -1
        for depth in range(len(row)):
            key = tuple(row[: depth + 1])
            node = index.get(key)
            if node is None:
                node = index[key] = len(tokens)
                tokens.append(int(row[depth]))
                depths.append(depth)
                parents.append(parent)
            path.append(node)
            parent = node
        paths.append(tuple(path))
    return PrefixTree(tuple(tokens), tuple(depths), tuple(parents), tuple(paths))


def ancestor_mask(tree: PrefixTree) -> torch.Tensor:
    """(n, n) bool: node i may attend to node j (j is i or one of its ancestors)."""
    n = len(tree.tokens)
    mask = torch.zeros((n, n), dtype=torch.bool)
    for node in range(n):
        ancestor = node
        while ancestor >= 0:
            mask[node, ancestor] = True
            ancestor = tree.parents[ancestor]
    return mask


def tree_log_probs(
    model: object, tree: PrefixTree, device: torch.device, dtype: torch.dtype
) -> np.ndarray:
    """Per path, the float64 sum of log p(token | its ancestors) over its tokens after the
    first, from one forward pass of ``model`` over the packed tree."""
    allowed = ancestor_mask(tree)
    mask = torch.zeros(allowed.shape, dtype=dtype)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    ids = torch.tensor([tree.tokens], dtype=torch.long, device=device)
    positions = torch.tensor([tree.depths], dtype=torch.long, device=device)
    with torch.inference_mode():
        logits = model(  # type: ignore[operator]
            input_ids=ids, attention_mask=mask[None, None].to(device), position_ids=positions
        ).logits[0]
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    rows, cols, owners = [], [], []
    for k, path in enumerate(tree.paths):
        for before, node in zip(path[:-1], path[1:], strict=True):
            rows.append(before)
            cols.append(tree.tokens[node])
            owners.append(k)
    picked = log_probs[torch.tensor(rows, dtype=torch.long), torch.tensor(cols, dtype=torch.long)]
    sums = np.zeros(len(tree.paths), dtype=np.float64)
    np.add.at(sums, np.asarray(owners, dtype=np.int64), picked.double().cpu().numpy())
    return sums
