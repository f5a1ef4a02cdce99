"""Strongly connected components of a small directed graph of step keys: what the
validator's rule on dated deadlines and the verifier's time bounds both ask."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

__all__ = ["strongly_connected"]


def strongly_connected(
    roots: Iterable[str], successors: Callable[[str], Sequence[str]]
) -> list[list[str]]:
    """The strongly connected components of the nodes reached from ``roots`` (in their
    order), each listed after every component it leads to (Tarjan's order: reverse
    topological). Without recursion, linear in nodes plus edges.

    :param successors: a node's successors, in order; each is a node too.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in roots:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, i = work[-1]
            edges = successors(node)
            if i < len(edges):
                work[-1] = (node, i + 1)
                target = edges[i]
                if target not in index:
                    index[target] = low[target] = counter
                    counter += 1
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, 0))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                found.append(component)
    return found
