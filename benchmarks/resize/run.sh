#!/usr/bin/env bash
# Run from /tmp/resize with exp.yaml beside it (as measured); writes summary.json there.
# data.resize measured: three runs of the same config, one per mode; validation objective compared.
cd /tmp/resize
for mode in squash center_crop pad; do
  /work/main/.venv/bin/python -m pneumobench.commands.main run exp.yaml --set data.resize=$mode --set name=resize-$mode > run-$mode.log 2>&1
  echo "$mode exit $?"
done
/work/main/.venv/bin/python - <<'PY'
import mlflow, json
c = mlflow.MlflowClient("sqlite:////tmp/resize/mlflow.db")
out = {}
for mode in ("squash", "center_crop", "pad"):
    e = c.get_experiment_by_name(f"resize-{mode}")
    for r in c.search_runs([e.experiment_id], "tags.`pneumobench.role` = 'model'"):
        m = r.data.metrics
        out.setdefault(mode, {})[r.data.tags["pneumobench.label"]] = {
            "best_val_f1": m.get("best_val_f1"), "test_roc_auc": m.get("test_roc_auc"),
            "test_at_spec_recall": m.get("test_at_spec_recall"), "test_at_f1_f1": m.get("test_at_f1_f1")}
print(json.dumps(out, indent=1))
json.dump(out, open("/tmp/resize/summary.json", "w"), indent=1)
PY
