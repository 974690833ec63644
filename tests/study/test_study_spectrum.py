"""The study records each trial's Jacobian spectrum at initialization and shows it in the report."""

import json

from neuralsmith.study import StudySpec, run

TINY = dict(depths=(1, 3), starts=("default", "orthogonal"), seeds=2, epochs=1, hidden=16,
            families=("default", "orthogonal"), function_space_examples=20)


def test_study_records_and_reports_the_spectrum_at_init(tmp_path):
    results = run(StudySpec(**TINY), tmp_path, progress=False)
    records = [json.loads(p.read_text()) for p in sorted((tmp_path / "trials").glob("*.json"))]
    assert len(records) == 4 and results["members"] == 8
    for r in records:
        s = r["spectrum_init"]
        assert s["method"] == "exact" and s["verdict"] in ("isometric", "ill-conditioned", "collapsing", "exploding")
        assert len(s["edges"]) == len(s["density"]) + 1 and s["chi"] > 0
    assert (tmp_path / "figures" / "spectrum_init.png").is_file()
    page = (tmp_path / "report.html").read_text()
    assert "Input-output Jacobian at the start" in page and "alt='spectrum_init'" in page
