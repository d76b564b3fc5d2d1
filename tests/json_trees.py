"""For the robustness tests: every path into a JSON document, and any JSON value to put at
one (hypothesis), seeded with words that reach the code's branches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st


def paths(node: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into `node`, the root (`()`) first, then depth first: keys and indexes."""
    found = [at]
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, (*at, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += paths(value, (*at, index))
    return found


def json_values(
    words: Sequence[str],
    *,
    int_bound: int = 10**6,
    allow_infinity: bool = True,
    max_leaves: int = 6,
) -> st.SearchStrategy[Any]:
    """Any JSON value: null, booleans, integers within the bound, floats (never NaN), short
    text and the `words`, in lists and objects a few levels deep."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-int_bound, int_bound),
        st.floats(allow_nan=False, allow_infinity=allow_infinity),
        st.text(max_size=12),
        st.sampled_from(list(words)),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
        ),
        max_leaves=max_leaves,
    )
