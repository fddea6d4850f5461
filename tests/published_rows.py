"""Synthetic published rows shared by the publish tests (importable from any test tier and
from a separate publisher process)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

N = 10
GENERATED = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def big_recs(users: int, version: str, offset: int = 0) -> pa.Table:
    """``users`` x N rows; item ids depend on the version so every answer names its set."""
    user = np.repeat(np.arange(1, users + 1, dtype=np.int64), N)
    rank = np.tile(np.arange(1, N + 1, dtype=np.int32), users)
    return pa.table(
        {
            "user_id": user,
            "item_id": user * 100 + rank + offset,
            "rank": rank,
            "score": (N + 1 - rank).astype(np.float64),
            "model_version": pa.array([version] * len(user)),
            "generated_at": pa.array([GENERATED] * len(user), pa.timestamp("us", tz="UTC")),
        }
    )
