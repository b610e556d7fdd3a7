"""Tests of pneumobench/tracking/pyfunc_model.py."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest


def store_uri_of(folder: Path) -> str:
    return f"sqlite:///{folder / 'mlflow.db'}"


@pytest.mark.slow
def test_pyfunc_model_predicts_without_pneumobench(in_run_folder: Path, tmp_path: Path) -> None:
    """Loaded in a subprocess whose import path lacks pneumobench, the registered champion takes
    image bytes and gives the same probabilities as pneumobench's predict."""
    from pneumobench.serving.bundle import load_bundle
    from pneumobench.serving.predictor import predict_files
    from pneumobench.tracking import models as tracked

    files = sorted((in_run_folder / "chest_xray" / "test").rglob("*.*"))[:4]
    champion = tracked.champion("tiny")
    assert champion is not None
    model, spec = load_bundle(tracked.download_serving(champion.run_id, tmp_path / "b"))
    expected = [r.probs for r in predict_files(model, spec, files)]
    payload = [base64.b64encode(f.read_bytes()).decode() for f in files]
    payload += ["/no/such/file.jpeg", base64.b64encode(b"not an image").decode()]
    script = textwrap.dedent(
        f"""
        import json, sys
        try:
            import pneumobench
        except ModuleNotFoundError:
            pass
        else:
            raise SystemExit("pneumobench is importable here: the test proves nothing")
        import mlflow, pandas as pd
        mlflow.set_tracking_uri({store_uri_of(in_run_folder)!r})
        model = mlflow.pyfunc.load_model("models:/pneumobench-tiny@champion")
        out = model.predict(pd.DataFrame({{"image": json.loads(sys.stdin.read())}}))
        print(json.dumps(out[["p_normal", "p_pneumonia", "prediction", "error"]].values.tolist()))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    blocker = tmp_path / "no_pneumobench"  # hides the installed project (an editable install)
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\n"
        "import importlib.abc\n"
        "class _Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'pneumobench' or name.startswith('pneumobench.'):\n"
        "            raise ModuleNotFoundError(name)\n"
        "        return None\n"
        "sys.meta_path.insert(0, _Block())\n"
    )
    env["PYTHONPATH"] = str(blocker)
    result = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(result.stdout.strip().splitlines()[-1])
    got = np.array([[r[0], r[1]] for r in rows[:4]])
    assert np.abs(got - np.array(expected)).max() < 1e-5
    assert all(r[2] in ("normal", "pneumonia") and not r[3] for r in rows[:4])
    path_row, garbage_row = rows[4], rows[5]  # each says what went wrong, the rest predicted
    assert "neither base64-encoded image bytes nor a file" in path_row[3] and not path_row[2]
    assert garbage_row[3].startswith("not a decodable image") and not garbage_row[2]
