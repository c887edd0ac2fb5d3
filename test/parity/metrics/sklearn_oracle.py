"""scikit-learn oracle for test/parity/metrics/sklearn.test.ts.

Reads a JSON file of cases, computes every metric with scikit-learn / numpy and writes JSON
back. NaN and infinities travel as the strings "NaN", "Infinity", "-Infinity" because JSON has
no representation for them.
"""

import json
import math
import sys
import warnings

import numpy as np
from sklearn import metrics as skm

warnings.simplefilter("ignore")  # zero_division and one-class warnings are expected here


def encode(value):
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, np.ndarray):
        return [encode(v) for v in value.tolist()]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
    return value


def at_threshold(y, p, threshold):
    pred = (p >= threshold).astype(int)
    tn, fp, fn, tp = skm.confusion_matrix(y, pred, labels=[0, 1]).ravel()
    return {
        "accuracy": skm.accuracy_score(y, pred),
        "balancedAccuracy": skm.balanced_accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, zero_division="warn"),
        "recall": skm.recall_score(y, pred, zero_division="warn"),
        "f1": skm.f1_score(y, pred, zero_division="warn"),
        "specificity": skm.recall_score(y, pred, pos_label=0, zero_division="warn"),
        "mcc": skm.matthews_corrcoef(y, pred),
        "confusion": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
    }


def ranking(y, p):
    return {
        "rocAuc": skm.roc_auc_score(y, p),
        "averagePrecision": skm.average_precision_score(y, p),
        "brier": skm.brier_score_loss(y, p),
    }


def predictions_metrics(y, p, pred):
    tn, fp, fn, tp = skm.confusion_matrix(y, pred, labels=[0, 1]).ravel()
    out = {
        "accuracy": skm.accuracy_score(y, pred),
        "balancedAccuracy": skm.balanced_accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred),
        "recall": skm.recall_score(y, pred),
        "f1": skm.f1_score(y, pred),
        "specificity": skm.recall_score(y, pred, pos_label=0),
        "mcc": skm.matthews_corrcoef(y, pred),
        "confusion": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
    }
    out.update(ranking(y, p))
    return out


def sweep(y, p, candidates):
    """F1 sweep with sklearn's scorers; the tie rule re-implemented independently with
    fractions-free integer keys where possible: max F1, then min |t - 0.5|, then min t."""
    curve = []
    for t in candidates:
        pred = (p >= t).astype(int)
        curve.append(
            {
                "threshold": float(t),
                "precision": skm.precision_score(y, pred),
                "recall": skm.recall_score(y, pred),
                "f1": skm.f1_score(y, pred),
            }
        )
    best = min(curve, key=lambda c: (-c["f1"], abs(c["threshold"] - 0.5), c["threshold"]))
    return {"threshold": best["threshold"], "f1": best["f1"], "curve": curve}


def binary_case(case):
    y = np.asarray(case["labels"], dtype=int)
    p = np.asarray(case["scores"], dtype=float)
    fpr, tpr, roc_t = skm.roc_curve(y, p)
    fpr_all, tpr_all, roc_t_all = skm.roc_curve(y, p, drop_intermediate=False)
    prec, rec, pr_t = skm.precision_recall_curve(y, p)
    prec_d, rec_d, pr_t_d = skm.precision_recall_curve(y, p, drop_intermediate=True)
    out = {
        "atThreshold": at_threshold(y, p, case["threshold"]),
        "roc": {"fpr": fpr, "tpr": tpr, "thresholds": roc_t},
        "rocAll": {"fpr": fpr_all, "tpr": tpr_all, "thresholds": roc_t_all},
        "pr": {"precision": prec, "recall": rec, "thresholds": pr_t},
        "prDropped": {"precision": prec_d, "recall": rec_d, "thresholds": pr_t_d},
        "sweepFixed": sweep(y, p, [k / 100 for k in range(101)]),
        "sweepExact": sweep(y, p, np.unique(p)),
    }
    out.update(ranking(y, p))
    return out


def criteria_case(case):
    y = np.asarray(case["labels"], dtype=int)
    p = np.asarray(case["scores"], dtype=float)
    ids = np.asarray(case["criterionIds"])
    thresholds = case["thresholds"]
    criteria = case["criteriaOrder"]
    pred = np.array([int(s >= thresholds[c]) for s, c in zip(p, ids)])
    per = {}
    for c in criteria:
        m = ids == c
        per[c] = predictions_metrics(y[m], p[m], pred[m])
    # Pairs are post-major with every criterion per post: reshape to a (post, criterion)
    # indicator matrix so sklearn's own macro/micro averaging is the oracle.
    k = len(criteria)
    Y = y.reshape(-1, k)
    P = pred.reshape(-1, k)
    return {
        "perCriterion": per,
        "macroF1": skm.f1_score(Y, P, average="macro"),
        "microF1": skm.f1_score(Y, P, average="micro"),
        "overall": predictions_metrics(y, p, pred),
    }


def pooled_case(case):
    ys, ps, preds = [], [], []
    for fold in case["folds"]:
        y = np.asarray(fold["labels"], dtype=int)
        p = np.asarray(fold["scores"], dtype=float)
        ys.append(y)
        ps.append(p)
        preds.append((p >= fold["thresholds"]).astype(int))
    y, p, pred = np.concatenate(ys), np.concatenate(ps), np.concatenate(preds)
    return {"overall": predictions_metrics(y, p, pred)}


def summary_case(case):
    out = {}
    for name in case["values"][0]:
        column = np.asarray([fold[name] for fold in case["values"]], dtype=float)
        out[name] = {
            "mean": np.mean(column),
            "std": np.std(column, ddof=1) if len(column) > 1 else float("nan"),
            "min": np.min(column),
            "max": np.max(column),
            "n": len(column),
        }
    return out


KINDS = {
    "binary": binary_case,
    "criteria": criteria_case,
    "pooled": pooled_case,
    "summary": summary_case,
}


def main():
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    results = {name: encode(KINDS[case["kind"]](case)) for name, case in cases.items()}
    with open(sys.argv[2], "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main()
