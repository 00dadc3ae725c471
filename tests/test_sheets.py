"""The sheet readers: text exactly as written (odd ids stay ids), any line ending, BOMs,
blank lines and stray white space; messages name the file's real line numbers. And the
start-up checks of the sheets (caught before any job, in common.smk)."""

from __future__ import annotations

import re
import string

import pandas as pd
import pytest
from conftest import run_workflow, write_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from npc_radiomics.base.errors import InputError
from npc_radiomics.base.io import read_table
from npc_radiomics.inputs.sheets import (
    read_clinical,
    read_sheet,
    validate_clinical,
    validate_samples,
)

ODD_IDS = ["NA", "None", "null", "nan", "NaN", "0", "007", "1e5", "True", "-1", "A.1"]
ids = st.one_of(
    st.sampled_from(ODD_IDS),
    st.text(string.ascii_letters + string.digits + "_.-", min_size=1, max_size=8),
)
space = st.text(" \t", max_size=2).map(lambda s: s.replace("\t", " "))  # no extra cells


@st.composite
def sheets(draw):
    """(file bytes, expected rows with their real line numbers, ending)."""
    patients = draw(st.lists(ids, min_size=1, max_size=8, unique=True))
    centers = draw(st.lists(st.sampled_from(["NA", "None", "QZ", "null"]), min_size=1))
    ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    header = ["patient_id", "center", "sequence", "image", "mask"]
    lines, expected = [], []

    def blank():
        for _ in range(draw(st.integers(0, 2))):
            lines.append(draw(st.sampled_from(["", " ", "\t", "  \t "])))

    blank()
    lines.append("\t".join(draw(space) + h + draw(space) for h in header))
    for k, pid in enumerate(patients):
        blank()
        cells = [pid, centers[k % len(centers)], "T1", f"{pid}.nii.gz", f"{pid}_m.nii.gz"]
        lines.append("\t".join(draw(space) + c + draw(space) for c in cells))
        expected.append((len(lines), cells))
    blank()
    text = ending.join(lines) + draw(st.sampled_from(["", ending]))
    bom = draw(st.sampled_from([b"", b"\xef\xbb\xbf"]))
    return bom + text.encode(), expected, header


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sheets())
def test_read_sheet_keeps_text_and_real_line_numbers(tmp_path, sheet):
    data, expected, header = sheet
    path = tmp_path / "samples.tsv"
    path.write_bytes(data)
    df = read_sheet(path, "sample sheet")
    assert list(df.columns) == header
    assert list(df.index) == [line for line, _ in expected]
    assert df.values.tolist() == [cells for _, cells in expected]
    # A message about a row names the line an editor shows for it.
    line, cells = expected[-1]
    df.loc[line, "sequence"] = "DWI"
    where = re.escape(f"sample sheet {path} line {line}: unknown sequence 'DWI'")
    with pytest.raises(InputError, match=where):
        validate_samples(df, ["T1"], sorted(set(df["center"])), check_files=False)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(ids, min_size=2, max_size=6, unique=True), st.sampled_from(["\n", "\r\n"]))
def test_clinical_ids_stay_strings_and_outcome_line_is_real(tmp_path, patients, ending):
    rows = ["patient_id\tresponse\tage", ""]
    rows += [f" {p} \t{k % 2}\t{40 + k}" for k, p in enumerate(patients)]
    rows[-1] = rows[-1].replace("\t1\t", "\t7\t").replace("\t0\t", "\t7\t")
    path = tmp_path / "clinical.tsv"
    path.write_bytes(("\ufeff" + ending.join(rows) + ending).encode())
    with pytest.raises(InputError, match=rf"line {len(rows)}: outcome 'response' of patient"):
        read_clinical(path, "response", ["age"], [])
    rows[-1] = rows[-1].replace("\t7\t", "\t1\t")
    path.write_text(ending.join(rows))
    df = read_clinical(path, "response", ["age"], [])
    assert sorted(df["patient_id"]) == sorted(patients)
    assert df["age"].dtype.kind in "if"


def test_read_table_keeps_na_ids(tmp_path):
    path = tmp_path / "split.tsv"
    path.write_text("patient_id\tcenter\tcohort\tlabel\nNA\tNone\ttrain\t1\nnull\tnan\ttest\t0\n")
    df = read_table(path)
    assert df["patient_id"].tolist() == ["NA", "null"]
    assert df["center"].tolist() == ["None", "nan"]
    assert df["label"].dtype.kind == "i"


def test_duplicated_column_names(tmp_path):
    path = tmp_path / "samples.tsv"
    path.write_text("\npatient_id\tcenter\tsequence\timage\tmask\tmask\nA\tQZ\tT1\ta\tb\tc\n")
    with pytest.raises(InputError, match=r"line 2: duplicated column name 'mask' \(columns 5"):
        read_sheet(path, "sample sheet")


def test_text_coded_categorical_is_kept_as_levels_and_a_text_biomarker_is_refused():
    clinical = pd.DataFrame(
        {"patient_id": ["A", "B"], "response": ["1", "0"], "gender": ["M", "F"], "age": ["1", ""]}
    )
    df = validate_clinical(clinical, "response", ["age"], ["gender"])
    assert df["gender"].tolist() == ["M", "F"]
    with pytest.raises(InputError, match=r"line 2: categorical variable 'gender' .* 'M'.*numbers"):
        validate_clinical(clinical, "response", ["age"], ["gender"], ["gender"])


def test_unknown_biomarker_is_refused():
    clinical = pd.DataFrame({"patient_id": ["A"], "response": ["1"], "age": ["3"]})
    with pytest.raises(InputError, match=r"evaluation.biomarkers names 'ldh'"):
        validate_clinical(clinical, "response", ["age"], [], ["ldh"])


# ------------------------------------------------------------------ start-up (dry run)
def _edit(path, fn):
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    fn(df).to_csv(path, sep="\t", index=False)


def _dry_run(tmp_path, cohort):
    cfg = write_config(tmp_path / "config.yaml", cohort["config"])
    return run_workflow(tmp_path, cfg, "-n")


def _startup_fails(tmp_path, cohort, words):
    proc = _dry_run(tmp_path, cohort)
    assert proc.returncode != 0, proc.stdout[-2000:]
    lines = [x for x in proc.stderr.splitlines() if "npc-radiomics input error" in x]
    assert len(lines) == 1, proc.stderr[-3000:]
    for word in words:
        assert word in lines[0], lines[0]
    assert not (tmp_path / "results").exists()  # before any job: nothing written
    return lines[0]


@pytest.mark.snakemake
def test_same_image_for_two_patients(tmp_path, user_cohort):
    def paste(d):
        d.loc[7, "image"] = d.loc[1, "image"]  # A002 T2 <- A000 T2
        return d

    _edit(user_cohort["samples"], paste)
    _startup_fails(
        tmp_path, user_cohort, ["line 9", "image of patient A002", "same file as on line 3", "A000"]
    )


@pytest.mark.snakemake
def test_same_mask_for_two_patients_but_shared_within_one(tmp_path, user_cohort):
    def share(d):
        d.loc[1, "mask"] = d.loc[0, "mask"]  # A000 T2 shares A000 T1's mask: allowed
        return d

    _edit(user_cohort["samples"], share)
    assert _dry_run(tmp_path, user_cohort).returncode == 0

    def paste(d):
        d.loc[4, "mask"] = d.loc[0, "mask"]  # A001 T2 <- A000 T1
        return d

    _edit(user_cohort["samples"], paste)
    _startup_fails(tmp_path, user_cohort, ["line 6", "mask of patient A001", "patient A000"])


@pytest.mark.snakemake
def test_duplicated_column_in_sheet_at_startup(tmp_path, user_cohort):
    text = user_cohort["samples"].read_text().splitlines()
    text[0] = text[0].replace("mask_reader2", "mask")
    user_cohort["samples"].write_text("\n".join(text) + "\n")
    _startup_fails(
        tmp_path,
        user_cohort,
        [f"sample sheet {user_cohort['samples']} line 1", "duplicated column name 'mask'"],
    )


@pytest.mark.snakemake
def test_blank_lines_do_not_shift_line_numbers(tmp_path, user_cohort):
    lines = user_cohort["samples"].read_text().splitlines()
    lines.insert(2, "")
    lines.insert(4, "   ")
    lines[6] = lines[6].replace("\tT1\t", "\tDWI\t").replace("\tT2\t", "\tDWI\t")
    lines[6] = lines[6].replace("\tCET1\t", "\tDWI\t")
    user_cohort["samples"].write_text("\r\n".join(lines) + "\r\n")
    _startup_fails(
        tmp_path,
        user_cohort,
        [f"sample sheet {user_cohort['samples']} line 7", "unknown sequence 'DWI'"],
    )


def test_job_processes_get_the_same_sheet_unchecked(user_cohort):
    """A job process (checks=False) gets exactly the table the main process checked, and
    skips the checks: a sheet the checks refuse passes unchanged in shape."""
    sheet = read_sheet(user_cohort["samples"], "sample sheet")
    sheet = sheet.sample(frac=1, random_state=3)  # rows in any order
    args = (["T1", "T2", "CET1"], ["A", "B"])
    checked = validate_samples(sheet, *args, base_dir=user_cohort["root"])
    unchecked = validate_samples(sheet, *args, base_dir=user_cohort["root"], checks=False)
    pd.testing.assert_frame_equal(checked, unchecked)
    bad = sheet.copy()
    bad.iloc[0, bad.columns.get_loc("sequence")] = "FLAIR"
    with pytest.raises(InputError, match="unknown sequence 'FLAIR'"):
        validate_samples(bad, *args, check_files=False)
    assert len(validate_samples(bad, *args, check_files=False, checks=False)) == len(sheet)
