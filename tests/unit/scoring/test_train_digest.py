"""The training-data digest in a model card depends on the data only, not on its storage."""

from __future__ import annotations

import numpy as np
import pandas as pd

from scoring.train import frame_digest


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "employer": pd.array(["国家电网", None, "acme"], dtype="string"),
        "months": np.array([12, 0, 36], dtype=np.int64),
        "base": [8000.5, np.nan, 0.0],
        "enrolled": [True, False, True],
    })


def test_the_digest_ignores_how_text_is_stored():
    frame = _frame()
    as_objects = frame.astype({"employer": object})
    as_python_strings = frame.astype({"employer": "string[python]"})
    assert frame_digest(frame) == frame_digest(as_objects) == frame_digest(as_python_strings)


def test_the_digest_sees_every_value_name_and_order():
    frame = _frame()
    digest = frame_digest(frame)
    changed = [
        frame.assign(base=[8000.5, np.nan, 0.5]),
        frame.assign(employer=pd.array(["国家电网", "", "acme"], dtype="string")),
        frame.rename(columns={"months": "month"}),
        frame[["months", "employer", "base", "enrolled"]],
        frame.iloc[[1, 0, 2]],
    ]
    assert len({digest, *(frame_digest(f) for f in changed)}) == len(changed) + 1
