"""A tuning worker killed mid-slot: its successor takes the slot over at once (no waiting
for a stale claim) and completes the same study a fresh run makes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
from test_tuning import SEED, SETTINGS, SPACES, make_design

from npc_radiomics.modelling.claims import FileClaims as _FileClaims
from npc_radiomics.modelling.settings import TuningSettings
from npc_radiomics.modelling.studies import finished_slots, trials_table, tune

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "workflow" / "scripts"
N_TRIALS = 3

# The doomed worker: the same tuning call as the successor's, with every slot made slow
# so that it is killed while computing slot 0 (it holds that slot's claim).
WORKER = textwrap.dedent(
    """
    import sys, time
    sys.path[:0] = [{scripts!r}, {tests!r}]
    import npc_radiomics.modelling.studies as tuning
    from npc_radiomics.modelling import settings
    from test_tuning import SEED, SETTINGS, SPACES, make_design

    def slow(*args, **kwargs):
        time.sleep(600)

    tuning.cv_auc = slow
    X, y = make_design().train()
    settings = settings.TuningSettings.defaults(**{{**SETTINGS.__dict__, "n_trials": {n}}})
    tuning.tune("knn", SPACES["knn"], X, y, settings, SEED, storage_path={journal!r})
    """
)


def _settings() -> TuningSettings:
    return TuningSettings.defaults(**{**SETTINGS.__dict__, "n_trials": N_TRIALS})


def _table(study) -> pd.DataFrame:
    return trials_table(finished_slots(study), "knn")[["slot", "state", "auc", "params"]]


def test_killed_worker_claim_is_taken_over_at_once(tmp_path):
    journal = tmp_path / "tuning" / "study.journal"
    script = WORKER.format(
        scripts=str(SCRIPTS), tests=str(ROOT / "tests"), n=N_TRIALS, journal=str(journal)
    )
    worker = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE)
    claims_dir = journal.parent / "claims"
    deadline = time.monotonic() + 120
    claim = None
    while claim is None and time.monotonic() < deadline:
        found = sorted(claims_dir.glob("*/slot00000.claim")) if claims_dir.exists() else []
        claim = found[0] if found else None
        time.sleep(0.1)
        assert worker.poll() is None, worker.stderr.read().decode()[-2000:]
    assert claim is not None, "the worker never claimed slot 0"
    # While the worker lives its claim is active: nobody else may compute slot 0.
    claims = _FileClaims(claim.parent, stale_after_s=900, heartbeat_s=30)
    assert claims.active(0)
    assert not claims.claim(0)

    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=30)
    worker.stderr.close()
    assert claim.exists()  # the dead worker's claim is still on disk, seconds old
    assert time.time() - claim.stat().st_mtime < 900
    assert not claims.active(0)  # ... but recognised as dead at once

    X, y = make_design().train()
    t0 = time.monotonic()
    study, _ = tune(
        "knn", SPACES["knn"], X, y, _settings(), SEED, storage_path=journal, poll_s=0.05
    )
    elapsed = time.monotonic() - t0
    assert elapsed < 60, f"successor waited {elapsed:.0f} s for a dead worker's claim"
    assert sorted(finished_slots(study)) == list(range(N_TRIALS))
    assert not list(claim.parent.glob("*.claim"))  # every claim released
    assert not list(claim.parent.glob(".slot*"))  # no private claim file left behind

    fresh, _ = tune("knn", SPACES["knn"], X, y, _settings(), SEED)  # in memory, from scratch
    pd.testing.assert_frame_equal(_table(study), _table(fresh))


def test_live_claim_blocks_and_released_claim_frees(tmp_path):
    owner = _FileClaims(tmp_path, stale_after_s=900, heartbeat_s=30)
    other = _FileClaims(tmp_path, stale_after_s=900, heartbeat_s=30)
    assert owner.claim(4)
    assert other.active(4) and not other.claim(4)
    owner.release(4)
    assert not other.active(4) and other.claim(4)
    assert not owner.claim(4)
    other.release(4)
    assert not list(tmp_path.iterdir())


def test_the_study_code_version_follows_the_modules_tuning_imports(tmp_path):
    """A resumed study is reused only with the same code: the fingerprint's modules are the
    ones the tuning code imports (settings, which builds the selection + ComBat pipeline,
    among them), so a change there names a new study and a change elsewhere does not."""
    import shutil

    from npc_radiomics.modelling.studies import study_code_modules

    scripts = tmp_path / "scripts"
    shutil.copytree(ROOT / "workflow" / "scripts" / "npc_radiomics", scripts / "npc_radiomics")
    before = dict(study_code_modules(scripts))
    for module in ("settings", "selection", "zoo", "harmonize", "folds", "studies"):
        assert f"npc_radiomics.modelling.{module}" in before
    assert "npc_radiomics.report.html" not in before
    html = scripts / "npc_radiomics" / "report" / "html.py"
    html.write_text(html.read_text() + "\n# unrelated\n")
    assert dict(study_code_modules(scripts)) == before
    settings = scripts / "npc_radiomics" / "modelling" / "settings.py"
    settings.write_text(settings.read_text() + "\n# changed\n")
    after = dict(study_code_modules(scripts))
    changed = [m for m in before if before[m] != after[m]]
    assert changed == ["npc_radiomics.modelling.settings"]
