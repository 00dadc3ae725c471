"""Sheets and tables as clinics keep them: tab- or comma-separated text, gzipped text and
.xlsx workbooks (first or named sheet) read alike, cell text as written, the file named in
every message; relative paths resolve against the sheet's own folder; a features-table
cell that is not a number is named; text-coded categorical variables are accepted,
dummy-coded wherever a model uses them, counted per level in Table 1 and their coding
recorded (provenance, bundle)."""

from __future__ import annotations

import gzip
import json
import re
import shutil
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from npc_radiomics.base.errors import InputError
from npc_radiomics.base.io import read_features_table, table_header
from npc_radiomics.checks import check_features_table
from npc_radiomics.inputs.sheets import (
    categorical_coding,
    dummy_code,
    read_clinical,
    read_sheet,
    validate_clinical,
    validate_samples,
)

HEADER = ["patient_id", "center", "sequence", "image", "mask"]
ROWS = [
    ["007", "NA", "T1", "img/007.nii.gz", "img/007_m.nii.gz"],
    ["NA", "NA", "T1", "img/NA.nii.gz", "img/NA_m.nii.gz"],
    ["1e5", "QZ", "T1", "img/1e5.nii.gz", "img/1e5_m.nii.gz"],
]


def _text(delimiter: str) -> str:
    return "\n".join(delimiter.join(r) for r in [HEADER, *ROWS]) + "\n"


def _workbook(path, sheets: dict[str, list[list]], blank_rows: int = 0) -> None:
    """An .xlsx with these sheets (cells written as given: text stays text)."""
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for r, row in enumerate(rows, start=1 + blank_rows):
            for c, value in enumerate(row, start=1):
                ws.cell(row=r, column=c, value=value)
    wb.save(path)


def _write_all_formats(folder):
    """The same sample sheet as .tsv, .csv, .csv.gz, .tsv.gz and .xlsx."""
    paths = {
        "tsv": folder / "s.tsv",
        "csv": folder / "s.csv",
        "csv.gz": folder / "s.csv.gz",
        "tsv.gz": folder / "s.tsv.gz",
        "xlsx": folder / "s.xlsx",
    }
    paths["tsv"].write_text(_text("\t"))
    paths["csv"].write_text(_text(","))
    paths["csv.gz"].write_bytes(gzip.compress(_text(",").encode()))
    paths["tsv.gz"].write_bytes(gzip.compress(_text("\t").encode()))
    _workbook(paths["xlsx"], {"Samples": [HEADER, *ROWS]})
    return paths


def test_every_format_reads_the_same_cells_as_written(tmp_path):
    paths = _write_all_formats(tmp_path)
    frames = {k: read_sheet(p, "sample sheet") for k, p in paths.items()}
    for kind, df in frames.items():
        assert list(df.columns) == HEADER, kind
        assert df.values.tolist() == ROWS, kind  # 007, NA and 1e5 stay text
        assert list(df.index) == [2, 3, 4], kind
    assert frames["xlsx"].index.name == "row" and frames["tsv"].index.name == "line"


def test_xlsx_rows_are_spreadsheet_rows_and_the_file_is_named(tmp_path):
    path = tmp_path / "cohort.xlsx"
    rows = [HEADER, ROWS[0], [], ROWS[1], [*ROWS[2][:2], "DWI", *ROWS[2][3:]]]
    _workbook(path, {"Other": [["x"]], "Samples": rows}, blank_rows=2)
    with pytest.raises(InputError, match="sheets: \\['Other', 'Samples'\\]"):
        read_sheet(path, "sample sheet", "Missing")
    df = read_sheet(path, "sample sheet", "Samples")
    assert list(df.index) == [4, 6, 7]  # header on spreadsheet row 3, a blank row 5
    where = re.escape(f"sample sheet {path} row 7: unknown sequence 'DWI'")
    with pytest.raises(InputError, match=where):
        validate_samples(df, ["T1"], ["NA", "QZ"], check_files=False)
    # The first sheet by default; a sheet name for a text file is refused, not ignored.
    assert read_sheet(path, "sample sheet").values.tolist() == []  # 'Other': a header only
    text = tmp_path / "s.tsv"
    text.write_text(_text("\t"))
    with pytest.raises(InputError, match="sheet name .'Samples'. is set in config but"):
        read_sheet(text, "sample sheet", "Samples")


def test_comma_separated_clinical_table_reads_and_every_message_names_the_file(tmp_path):
    path = tmp_path / "clinical.csv"
    path.write_text("patient_id,response,age,gender\nA,1,50,Male\nB,0,61,Female\nC,7,40,Male\n")
    with pytest.raises(
        InputError, match=re.escape(f"clinical table {path} line 4: outcome 'response'")
    ):
        read_clinical(path, "response", ["age"], ["gender"])
    path.write_text("id,response\nA,1\n")
    with pytest.raises(InputError, match=re.escape(f"clinical table {path}: missing column")):
        read_clinical(path, "response", [], [])
    # A workbook with a text id column and a number column: the same table as the CSV.
    book = tmp_path / "clinical.xlsx"
    _workbook(
        book,
        {"Clinical": [["patient_id", "response", "age", "gender"], ["007", 1, 50, "Male"]]},
    )
    df = read_clinical(book, "response", ["age"], ["gender"], sheet="Clinical")
    assert df.to_dict("records") == [
        {"patient_id": "007", "response": 1, "age": 50.0, "gender": "Male"}
    ]


def test_old_sheet_errors_are_gone(tmp_path):
    """What the issue measured: .xlsx read as 'not UTF-8', a CSV as 'missing column'."""
    book = tmp_path / "clinical.xlsx"
    _workbook(book, {"S": [["patient_id", "response"], ["A", 1], ["B", 0]]})
    assert read_clinical(book, "response", [], [])["response"].tolist() == [1, 0]
    renamed = tmp_path / "clinical.tsv"  # a workbook under a text name: said so
    shutil.copy(book, renamed)
    with pytest.raises(InputError, match="zip archive .an Excel workbook"):
        read_sheet(renamed, "clinical table")


def test_relative_paths_resolve_against_the_sheet_folder_and_survive_a_move(tmp_path, monkeypatch):
    cohort = tmp_path / "site" / "cohort"
    (cohort / "img").mkdir(parents=True)
    for pid in ("007", "NA", "1e5"):
        for suffix in ("", "_m"):
            (cohort / "img" / f"{pid}{suffix}.nii.gz").write_bytes(b"x")
    (cohort / "samples.csv").write_text(_text(","))
    elsewhere = tmp_path / "run"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the working directory is not the sheet's folder
    sheet = cohort / "samples.csv"
    df = validate_samples(read_sheet(sheet, "sample sheet"), ["T1"], ["NA", "QZ"])
    assert df["image"].tolist() == [str(cohort / "img" / f"{p}.nii.gz") for p in df["patient_id"]]
    assert not df.attrs.get("warnings")
    moved = tmp_path / "archive" / "cohort2024"
    moved.parent.mkdir()
    shutil.move(str(cohort), str(moved))
    df = validate_samples(read_sheet(moved / "samples.csv", "sample sheet"), ["T1"], ["NA", "QZ"])
    assert all(p.startswith(str(moved)) for p in df["mask"])
    # Absolute paths are kept as written.
    absolute = [[*r[:3], str(moved / r[3]), str(moved / r[4])] for r in ROWS]
    (moved / "abs.tsv").write_text("\n".join("\t".join(r) for r in [HEADER, *absolute]))
    df = validate_samples(read_sheet(moved / "abs.tsv", "sample sheet"), ["T1"], ["NA", "QZ"])
    assert sorted(df["image"]) == sorted(r[3] for r in absolute)


def test_a_sheet_written_for_the_working_directory_still_reads_with_a_warning(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "img").mkdir()
    for pid in ("007", "NA", "1e5"):
        for suffix in ("", "_m"):
            (tmp_path / "img" / f"{pid}{suffix}.nii.gz").write_bytes(b"x")
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "samples.tsv").write_text(_text("\t"))
    df = validate_samples(read_sheet("config/samples.tsv", "sample sheet"), ["T1"], ["NA", "QZ"])
    assert df["image"].tolist()[0].startswith("img/")
    (warning,) = df.attrs["warnings"]
    assert "6 relative path(s)" in warning and "sheet's folder config" in warning


# ---------------------------------------------------------------------- feature tables
FEATURES = pd.DataFrame(
    {
        "patient_id": ["007", "NA", "P3", "P4"],
        "center": ["A", "A", "B", "B"],
        "response": [1, 0, 1, 0],
        "T1__a": [0.1, 1.5e-8, -3.25, 12345.678901234],
        "T1__b": [1.0, np.nan, 2.0, 3.0],
        "note": ["x", "y", "", "z"],
    }
)
COLUMNS = {"id": "patient_id", "center": "center", "cohort": None}


def _write_features(path, table: pd.DataFrame) -> None:
    if str(path).endswith(".xlsx"):
        table.to_excel(path, index=False, engine="openpyxl")
    else:
        sep = "," if ".csv" in str(path) else "\t"
        table.to_csv(path, sep=sep, index=False)


@pytest.mark.parametrize("name", ["f.tsv", "f.csv", "f.csv.gz", "f.tsv.gz", "f.xlsx"])
def test_feature_table_formats_read_alike(tmp_path, name):
    reference = tmp_path / "ref.tsv"
    FEATURES.to_csv(reference, sep="\t", index=False)
    expected = read_features_table(reference, COLUMNS)
    path = tmp_path / name
    _write_features(path, FEATURES)
    table = read_features_table(path, COLUMNS)
    pd.testing.assert_frame_equal(table, expected)
    assert table["patient_id"].tolist() == ["007", "NA", "P3", "P4"]
    assert table["T1__a"].tolist() == FEATURES["T1__a"].tolist()  # the same floats
    assert table_header(path) == list(FEATURES.columns)
    patients, warnings = check_features_table(table, COLUMNS, "response", name, "A")
    assert patients["label"].tolist() == [1, 0, 1, 0]
    assert warnings and "'note'" in warnings[0]  # a text column is not a feature


@pytest.mark.parametrize(
    ("cell", "name"), [("#DIV/0!", "f.csv"), ("1,5", "f.tsv"), ("#DIV/0!", "f.xlsx")]
)
def test_a_text_cell_in_a_numeric_column_is_named(tmp_path, cell, name):
    table = FEATURES.astype({"T1__b": object})
    table.loc[2, "T1__b"] = cell
    path = tmp_path / name
    _write_features(path, table)
    unit = "row" if name.endswith(".xlsx") else "line"
    message = re.escape(f"features table {name} {unit} 4, column 'T1__b': {cell!r} is not a number")
    with pytest.raises(InputError, match=message):
        read_features_table(path, COLUMNS)


def test_1e999_counts_as_infinite_and_is_reported_as_such(tmp_path):
    path = tmp_path / "f.csv.gz"
    text = FEATURES.to_csv(index=False).replace("12345.678901234", "1e999")
    path.write_bytes(gzip.compress(text.encode()))
    table = read_features_table(path, COLUMNS)
    assert table["T1__a"].iloc[3] == np.inf
    with pytest.raises(InputError, match="feature 'T1__a' is infinite for P4"):
        check_features_table(table, COLUMNS, "response", path.name, "A")


# ---------------------------------------------------------------------- text categoricals
def _clinical(n=120, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    histology = rng.choice(["keratinizing", "non-keratinizing", "basaloid"], size=n)
    effect = pd.Series(histology).map(
        {"basaloid": -1.0, "keratinizing": 0.0, "non-keratinizing": 1.2}
    )
    age = rng.normal(50, 10, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(effect.to_numpy() + 0.02 * (age - 50))))).astype(int)
    gender = np.where(rng.random(n) < 0.5, "Male", "Female")
    table = pd.DataFrame(
        {
            "patient_id": [f"P{i:03d}" for i in range(n)],
            "response": y.astype(str),
            "age": np.round(age, 1).astype(str),
            "histology": histology,
            "gender": gender,
        }
    )
    table.loc[3, "histology"] = "NA"  # missing, not a level
    return table


def test_text_categoricals_are_sorted_levels_with_a_recorded_reference():
    clinical = validate_clinical(_clinical(), "response", ["age"], ["histology", "gender"])
    coding = categorical_coding(clinical, ["histology", "gender"])
    assert coding["histology"] == {
        "kind": "text",
        "levels": ["basaloid", "keratinizing", "non-keratinizing"],
        "reference": "basaloid",
        "columns": ["histology=keratinizing", "histology=non-keratinizing"],
    }
    assert coding["gender"]["reference"] == "Female"
    coded, variables = dummy_code(clinical, ["age", "histology", "gender"], ["histology"])
    assert variables == ["age", "histology=keratinizing", "histology=non-keratinizing", "gender"]
    assert np.isnan(coded.loc[3, "histology=keratinizing"])  # missing stays missing
    for _, row in coded[coded["histology"].notna()].iterrows():
        ones = [c for c in coding["histology"]["columns"] if row[c] == 1.0]
        assert ones == ([] if row["histology"] == "basaloid" else [f"histology={row['histology']}"])


def test_clinical_analysis_dummy_codes_text_levels_and_counts_them_per_level():
    import statsmodels.api as sm

    from npc_radiomics.evaluation.clinical import clinical_analysis

    clinical = validate_clinical(_clinical(), "response", ["age"], ["histology", "gender"])
    data = clinical.assign(cohort=np.where(np.arange(len(clinical)) < 90, "train", "test"))
    result = clinical_analysis(
        data, "response", ["age"], ["histology", "gender"], [], entry_p=0.5, stay_p=0.5
    )
    t1 = result.table1
    levels = t1.loc[t1["variable"] == "histology", "level"].tolist()
    assert levels == ["", "basaloid", "keratinizing", "non-keratinizing"]
    train = data[data["cohort"] == "train"]
    n_basaloid = int((train["histology"] == "basaloid").sum())
    known = int(train["histology"].notna().sum())
    cell = t1.loc[(t1["variable"] == "histology") & (t1["level"] == "basaloid"), "train_all"]
    assert cell.item() == f"{n_basaloid} ({100 * n_basaloid / known:.2f})"
    t2 = result.table2.set_index("variable")
    assert "histology=non-keratinizing" in t2.index and "gender=Male" in t2.index
    # Table 2's row is the logistic fit on the 0/1 dummy (reference: basaloid).
    d = train[["response", "histology"]].dropna()
    x = sm.add_constant((d["histology"] == "non-keratinizing").astype(float))
    fit = sm.Logit(d["response"].astype(float), x).fit(disp=0)
    assert t2.loc["histology=non-keratinizing", "log_or"] == pytest.approx(fit.params.iloc[1])
    # The stepwise model chooses among the dummies and scores every cohort.
    assert set(result.stepwise.selected) <= set(t2.index)
    assert result.clinical_predictions["probability"].notna().sum() > 0


def test_combat_covariates_read_text_levels_from_a_named_workbook_sheet(tmp_path):
    from npc_radiomics.modelling.design import load_design
    from npc_radiomics.modelling.harmonize import COVARIATE_PREFIX

    rng = np.random.default_rng(1)
    ids = [f"P{i:02d}" for i in range(12)]
    features = pd.DataFrame(
        {"patient_id": ids, "f1": rng.normal(size=12), "f2": rng.normal(size=12)}
    )
    features.to_csv(tmp_path / "features.csv.gz", index=False, compression="gzip")
    split = pd.DataFrame(
        {"patient_id": ids, "center": ["A", "B"] * 6, "cohort": "train", "label": [0, 1] * 6}
    )
    split.to_csv(tmp_path / "split.tsv", sep="\t", index=False)
    rows = [["patient_id", "response", "gender"]]
    rows += [[p, k % 2, "Male" if k % 3 else "Female"] for k, p in enumerate(ids)]
    _workbook(tmp_path / "clinical.xlsx", {"Notes": [["x"]], "Clinical": rows})
    design = load_design(
        tmp_path / "features.csv.gz",
        tmp_path / "split.tsv",
        combat_covariates=["gender"],
        clinical_path=tmp_path / "clinical.xlsx",
        categorical=("gender",),
        clinical_sheet="Clinical",
    )
    column = design.aux[f"{COVARIATE_PREFIX}gender=Male"]
    assert column.tolist() == [0.0 if k % 3 == 0 else 1.0 for k in range(12)]


def test_the_coding_is_recorded_in_provenance_and_bundle(tmp_path):
    from test_bundle import SETTINGS, make_bundle

    from npc_radiomics.glue.provenance import provenance_record

    clinical = validate_clinical(_clinical(), "response", ["age"], ["histology"])
    coding = categorical_coding(clinical, ["histology"])
    record = provenance_record({"seed": 1}, [], clinical_coding=coding)
    assert record["clinical_coding"]["histology"]["reference"] == "basaloid"
    bundle = make_bundle(tmp_path, settings={**SETTINGS, "clinical_coding": coding})
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["clinical_coding"] == coding


@pytest.mark.snakemake
def test_a_cohort_folder_of_xlsx_and_gzipped_csv_sheets_passes_startup(tmp_path, user_cohort):
    """The start-up of a run on a cohort folder as a clinic hands it over: the sample sheet
    an .xlsx (a named sheet) with paths relative to its folder, the clinical table a
    gzipped CSV with a text-coded gender; the run's directory is elsewhere."""
    from conftest import run_workflow, write_config

    root = user_cohort["root"]
    samples = pd.read_csv(user_cohort["samples"], sep="\t", dtype=str, keep_default_na=False)
    for column in ("image", "mask"):
        samples[column] = [str(Path(p).relative_to(root)) for p in samples[column]]
    rows = [list(samples.columns), *samples.to_numpy().tolist()]
    _workbook(root / "samples.xlsx", {"Read me": [["notes"]], "Samples": rows})
    clinical = pd.read_csv(user_cohort["clinical"], sep="\t", dtype=str)
    clinical["gender"] = np.where(clinical["gender"] == "1", "Male", "Female")
    clinical.to_csv(root / "clinical.csv.gz", index=False, compression="gzip")
    config = dict(user_cohort["config"])
    config["samples"] = str(root / "samples.xlsx")
    config["clinical"] = str(root / "clinical.csv.gz")
    config["sheets"] = {"samples": "Samples", "clinical": None, "features_table": None}
    run = tmp_path / "run"
    run.mkdir()
    proc = run_workflow(run, write_config(tmp_path / "config.yaml", config), "-n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "qc_batch" in proc.stdout and "input error" not in proc.stderr
    # Without the sheet name the first sheet (a note) is read, and refused, named.
    config["sheets"]["samples"] = None
    proc = run_workflow(run, write_config(tmp_path / "config.yaml", config), "-n")
    assert proc.returncode != 0
    assert f"sample sheet {root / 'samples.xlsx'}: missing column(s)" in proc.stderr


def test_text_feature_tables_read_exactly_as_before(tmp_path):
    """A comma- or tab-separated table gives the very frame the workflow always read
    (pandas' parse: the same floats to the last bit, whole numbers as integers), so a run
    from an unchanged table keeps its results."""
    from npc_radiomics.base.io import read_table

    rng = np.random.default_rng(11)
    table = pd.DataFrame(rng.normal(size=(40, 30)) * 10.0 ** rng.integers(-8, 8, 30))
    table.columns = [f"T1__f{j}" for j in range(30)]
    table.insert(0, "response", np.arange(40) % 2)
    table.insert(0, "patient_id", [f"{i:03d}" for i in range(40)])
    for name, sep in (("t.csv", ","), ("t.tsv", "\t")):
        path = tmp_path / name
        table.to_csv(path, sep=sep, index=False, float_format="%.17g")
        expected = read_table(path, text_columns=["patient_id"])
        pd.testing.assert_frame_equal(read_features_table(path, COLUMNS), expected)
