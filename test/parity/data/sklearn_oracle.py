"""Oracle for the split parity tests: reads cases as JSON on stdin, prints sklearn's and numpy's answers.

Runs with the project's .venv (scikit-learn >= 1.9, which has the StratifiedGroupKFold shuffle fix).
"""
import json
import sys
import warnings

import numpy as np
import sklearn
from sklearn.model_selection import StratifiedGroupKFold

warnings.simplefilter("ignore")
request = json.load(sys.stdin)
out = {"sklearn": sklearn.__version__, "sgkf": [], "rng": []}
for case in request.get("sgkf", []):
    splitter = StratifiedGroupKFold(
        n_splits=case["n_splits"],
        shuffle=case["shuffle"],
        random_state=case["seed"] if case["shuffle"] else None,
    )
    y = np.asarray(case["y"])
    folds = [test.tolist() for _, test in splitter.split(np.zeros(len(y)), y, case["groups"])]
    out["sgkf"].append(folds)
for case in request.get("rng", []):
    rs = np.random.RandomState(case["seed"])
    out["rng"].append(
        {
            "key": [int(v) for v in rs.get_state()[1][:8]],
            "sample": rs.random_sample(4).tolist(),
            "permutation": rs.permutation(case["n"]).tolist(),
        }
    )
json.dump(out, sys.stdout)
