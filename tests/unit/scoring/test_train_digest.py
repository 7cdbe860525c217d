"""The training-data digest in a model card depends on the data only, not on its storage."""

from __future__ import annotations

import numpy as np
import pandas as pd

from scoring.training.train import frame_digest


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "employer": pd.array(["国家电网", None, "acme"], dtype="string"),
        "months": np.array([12, 0, 36], dtype=np.int64),
        "base": [8000.5, np.nan, 0.0],
        "enrolled": [True, False, True],
    })


def test_the_digest_ignores_how_columns_are_stored():
    frame = _frame()
    same = [
        frame.astype({"employer": object}),
        frame.astype({"employer": "string[python]"}),
        frame.astype({"months": "Int64", "base": "Float64", "enrolled": "boolean"}),
        frame.astype({"months": "float64", "enrolled": "int8"}),
    ]
    assert {frame_digest(f) for f in same} == {frame_digest(frame)}


def test_text_cannot_pass_for_a_missing_value_or_run_into_the_next():
    a = pd.DataFrame({"t": pd.array(["ab", "c"], dtype=object)})
    b = pd.DataFrame({"t": pd.array(["a", "bc"], dtype=object)})
    missing = pd.DataFrame({"t": pd.array([None, "c"], dtype=object)})
    marker = pd.DataFrame({"t": pd.array(["-", "c"], dtype=object)})
    assert len({frame_digest(f) for f in (a, b, missing, marker)}) == 4


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
