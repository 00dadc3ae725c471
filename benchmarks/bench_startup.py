"""Start-up of every rule script: the imports it runs before its work, before vs after.

For each ``workflow/scripts/*.py`` the module-level imports (parsed with ``ast``, in the
order the script runs them) and ``rule_setup`` (thread limits, logging) are timed in a
fresh interpreter, best of ``--repeats``, for the reference commit (``--ref``) and the
working tree (or ``--after``), each checked out in a temporary git worktree, interleaved
so that both see the same machine load. Printed side by side with the ratio and the heavy
libraries each one loads; a bare interpreter is the floor. A script that exists on one
side only (e.g. the per-case imaging scripts ``qc_case``, ``preprocess_case``,
``preprocess_mask_reader2`` and ``extract_features`` of commits before the imaging batches,
``qc_batch``, ``preprocess_batch`` and ``extract_batch`` after them) is timed on that side
and reported as such, never compared with another script; the sums count the scripts on
both sides.

The import columns count start-up only: a job may import more while it works
(``preprocess_batch`` imports pandas for its moments table and scipy.ndimage for N4's head
mask, ``qc_batch`` pandas for its table). A rule job also pays Snakemake's script preamble
(unpickling the ``snakemake`` object imports part of Snakemake). ``--job`` times whole small
rule jobs on a synthetic case, each through a real ``snakemake`` run: ``qc_batch`` and
``preprocess_batch`` (N4 off, so mostly start-up) on a one-patient, one-sequence batch, and
on a tree that still has them the per-case ``qc_case`` and ``preprocess_mask_reader2``; the
job's own wall time from its ``benchmark:`` file and the whole command's. A rule whose
script one side lacks is timed on the other side only.

    .venv/bin/python benchmarks/bench_startup.py [--ref main] [--after COMMIT] [--repeats 3] [--job]
"""

from __future__ import annotations

import argparse
import ast
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = (
    "pandas",
    "scipy",
    "SimpleITK",
    "radiomics",
    "pydicom",
    "sklearn",
    "matplotlib",
    "seaborn",
    "optuna",
    "shap",
    "statsmodels",
    "xgboost",
    "lightgbm",
)
#: The imaging scripts, the start-up that counts most: one job per batch of
#: ``imaging.patients_per_job`` patients of one centre ...
BATCH = ("qc_batch", "preprocess_batch", "extract_batch")
#: ... or per patient x sequence: ``dicom_mask`` and, before the batches (e1c3fde), the
#: per-case QC, preprocessing and extraction scripts.
PER_CASE = ("dicom_mask", "qc_case", "preprocess_case", "extract_features")
PER_CASE += ("preprocess_mask_reader2",)
IMAGING = BATCH + PER_CASE


def module_imports(script: Path) -> str:
    """The script's module-level import statements (not those inside functions), as code."""
    tree = ast.parse(script.read_text())
    lines = []

    def walk(body):
        for node in body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                lines.append(ast.unparse(node))
            elif isinstance(node, ast.If | ast.Try | ast.With):
                walk(node.body)  # imports guarded at module level run too (first branch)

    walk(tree.body)
    return "\n".join(lines)


def probe(scripts_dir: Path, imports: str) -> str:
    """The script's start-up: its imports, then ``rule_setup`` (thread limits, logging)
    with a stand-in for the ``snakemake`` object, as every rule script does first."""
    heavy = repr(HEAVY)
    setup = (
        "from types import SimpleNamespace\nrule_setup(SimpleNamespace(threads=1, log=[]))\n"
        if "rule_setup" in imports
        else ""
    )
    return (
        f"import sys\nsys.path.insert(0, {str(scripts_dir)!r})\n{imports}\n{setup}"
        f"print(','.join(m for m in {heavy} if m in sys.modules))\n"
    )


def run(code: str, cwd: Path) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        return float("nan"), "ERROR: " + (proc.stderr.strip().splitlines() or ["?"])[-1]
    return elapsed, proc.stdout.strip()


def checkout(ref: str, where: Path) -> Path:
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(where), ref],
        check=True,
    )
    return where


def remove_worktree(where: Path) -> None:
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(where)], check=False
    )
    shutil.rmtree(where, ignore_errors=True)


def time_scripts(trees: dict[str, Path], repeats: int, only: list[str] | None = None) -> dict:
    names = sorted(
        {p.stem for tree in trees.values() for p in (tree / "workflow" / "scripts").glob("*.py")}
    )
    names = [n for n in names if not only or n in only]
    result: dict = {}
    floor = min(run("pass", ROOT)[0] for _ in range(repeats))
    for name in names:
        codes = {}
        for label, tree in trees.items():
            script = tree / "workflow" / "scripts" / f"{name}.py"
            if script.exists():
                codes[label] = probe(script.parent, module_imports(script))
        for code in codes.values():  # warm-up: byte-compile, fill the page cache
            run(code, ROOT)
        best = {label: float("inf") for label in codes}
        loaded = {}
        for _ in range(repeats):
            for label, code in codes.items():  # interleaved: the same load for both
                elapsed, out = run(code, ROOT)
                best[label] = min(best[label], elapsed)
                loaded[label] = out
        result[name] = {label: (best[label], loaded[label]) for label in codes}
    return {"floor": floor, "scripts": result}


def print_table(timings: dict, labels: list[str]) -> None:
    before, after = labels
    print(f"bare interpreter (python -c pass): {timings['floor']:.3f} s")
    head = f"{'script':26s} {before:>9s} {after:>9s} {'ratio':>6s}  heavy imports before -> after"
    print(head)
    print("-" * len(head))
    totals = {"imaging": [0.0, 0.0], "all": [0.0, 0.0]}
    for name, row in timings["scripts"].items():
        mark = "*" if name in BATCH else "+" if name in PER_CASE else " "
        if before not in row or after not in row:  # not comparable: timed on its side only
            ((label, (t, m)),) = row.items()
            cells = [f"{t:8.3f}s" if side == label else f"{'-':>9s}" for side in labels]
            print(f"{name + mark:26s} {' '.join(cells)} {'':6s}  {m or '-'} (only in {label})")
            continue
        (tb, mb), (ta, ma) = row[before], row[after]
        print(
            f"{name + mark:26s} {tb:8.3f}s {ta:8.3f}s {tb / ta:5.2f}x  {mb or '-'} -> {ma or '-'}"
        )
        for key in ("all", "imaging") if name in IMAGING else ("all",):
            totals[key][0] += tb
            totals[key][1] += ta
    for key, (tb, ta) in totals.items():
        if not ta:  # no script of that kind on both sides among --scripts
            continue
        print(f"{'sum, ' + key + ' (both sides)':26s} {tb:8.3f}s {ta:8.3f}s {tb / ta:5.2f}x")
    print("* imaging script, one job per batch of patients (config imaging.patients_per_job)")
    print("+ imaging script, one job per patient x sequence")
    print(
        "module-level imports only: while working, qc_batch imports pandas (its QC table) and\n"
        "preprocess_batch pandas (its moments table) and scipy.ndimage (N4's head mask);\n"
        "--job times whole jobs"
    )


#: A one-patient, one-sequence batch (patient P001 of centre A, sequence T1) on the
#: synthetic case that :func:`time_jobs` writes: rule qc_batch's and preprocess_batch's
#: ``cases`` params (workflow/rules/common.smk: batch_qc_cases, batch_preprocess_cases).
_CASE = {"patient_id": "P001", "sequence": "T1", "image": "case/image.nii.gz"}
QC_CASES = [
    {
        **_CASE,
        "center": "A",
        "mask": "case/mask.nii.gz",
        "mask_reader2": "",
        "mask_report": "",
        "mask_reader2_report": "",
    }
]
#: With a reader-2 mask (the same file), so the job also does the per-case
#: preprocess_mask_reader2 job's work; N4 off, as that job had none.
PREPROCESS_CASES = [{**_CASE, "mask": "case/mask.nii.gz", "mask_reader2": "case/mask.nii.gz"}]
PREPROCESS_SETTINGS = {
    "T1": {"n4": {"enabled": False}, "interpolator": "bspline", "crop_margin_mm": None}
}

#: The rules ``--job`` times, each with its script (``@SCRIPTS@``: the tree's
#: workflow/scripts). A tree's Snakefile holds the rules whose scripts it has.
JOB_RULES = {
    "qc_batch": f"""
rule qc_batch:
    input:
        images=["case/image.nii.gz"],
        masks=["case/mask.nii.gz"],
        masks_reader2=[],
    output:
        "out/qc/A/000.tsv",
    params:
        cases={QC_CASES!r},
        on_fail="exclude",
        qc={{}},
        masks={{}},
        sequences=["T1"],
    threads: 1
    log:
        "out/qc/A/000.log",
    benchmark:
        "out/qc/A/000.bench.tsv"
    script:
        "@SCRIPTS@/qc_batch.py"
""",
    "preprocess_batch": f"""
rule preprocess_batch:
    input:
        qc="case/qc_batch.tsv",
        images=["case/image.nii.gz"],
        masks=["case/mask.nii.gz"],
        masks_reader2=["case/mask.nii.gz"],
    output:
        folder=directory("out/preprocess/A/000"),
        moments="out/preprocess/A/000_moments.tsv",
    params:
        cases={PREPROCESS_CASES!r},
        settings={PREPROCESS_SETTINGS!r},
        spacing_mm=[1.0, 1.0, 1.0],
        mask_label=1,
        components="merge",
    threads: 1
    log:
        "out/preprocess/A/000.log",
    benchmark:
        "out/preprocess/A/000.bench.tsv"
    script:
        "@SCRIPTS@/preprocess_batch.py"
""",
    # The per-case rules of commits before the imaging batches (e1c3fde).
    "qc_case": """
rule qc_case:
    input:
        image="case/image.nii.gz",
        mask="case/mask.nii.gz",
        mask_reader2=[],
    output:
        "out/{patient}/{sequence}/qc.tsv",
    params:
        center="A",
        qc={},
        on_fail="exclude",
    threads: 1
    log:
        "out/{patient}/{sequence}/qc.log",
    benchmark:
        "out/{patient}/{sequence}/qc_case.bench.tsv"
    script:
        "@SCRIPTS@/qc_case.py"
""",
    "preprocess_mask_reader2": """
rule preprocess_mask_reader2:
    input:
        mask="case/mask.nii.gz",
        reference="case/image.nii.gz",
    output:
        mask="out/mask_reader2.nii.gz",
    params:
        spacing_mm=[1.0, 1.0, 1.0],
        mask_label=1,
    threads: 1
    log:
        "out/mask_reader2.log",
    benchmark:
        "out/preprocess_mask_reader2.bench.tsv"
    script:
        "@SCRIPTS@/preprocess_mask_reader2.py"
""",
}
#: rule -> (its output, its benchmark file): the jobs timed by ``--job``.
JOBS = {
    "qc_batch": ("out/qc/A/000.tsv", "out/qc/A/000.bench.tsv"),
    "preprocess_batch": ("out/preprocess/A/000_moments.tsv", "out/preprocess/A/000.bench.tsv"),
    "qc_case": ("out/P001/T1/qc.tsv", "out/P001/T1/qc_case.bench.tsv"),
    "preprocess_mask_reader2": ("out/mask_reader2.nii.gz", "out/preprocess_mask_reader2.bench.tsv"),
}


def has_script(tree: Path, rule: str) -> bool:
    """Whether the tree has the script of ``rule`` (each job rule's script is its name)."""
    return (tree / "workflow" / "scripts" / f"{rule}.py").exists()


def time_jobs(trees: dict[str, Path], repeats: int, workdir: Path) -> dict:
    """Wall time of a whole ``snakemake`` command running one real small job (the
    Snakemake process, its scheduling and the job's own interpreter), per rule of
    :data:`JOBS` and tree that has the rule's script, best of ``repeats`` after one
    warm-up run: {rule: {tree label: (whole command s, job s)}}."""
    import numpy as np
    import SimpleITK as sitk

    case = workdir / "case"
    case.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    image = sitk.GetImageFromArray(rng.normal(100, 10, (24, 32, 32)).astype(np.float32))
    roi = np.zeros((24, 32, 32), np.uint8)
    roi[8:16, 10:20, 10:20] = 1
    mask = sitk.GetImageFromArray(roi)
    mask.CopyInformation(image)
    sitk.WriteImage(image, str(case / "image.nii.gz"))
    sitk.WriteImage(mask, str(case / "mask.nii.gz"))
    # The batch's QC table (of rule qc_batch's columns, those preprocess_batch reads: which
    # of its patients are included), so the preprocess_batch job runs alone.
    (case / "qc_batch.tsv").write_text(
        "patient_id\tsequence\tstatus\tpatient_status\nP001\tT1\tpass\tincluded\n"
    )
    snakemake = Path(sys.executable).with_name("snakemake")
    best: dict = {}
    for label, tree in trees.items():
        snakefile = workdir / f"Snakefile.{label.replace('/', '_')}"
        rules = [JOB_RULES[rule] for rule in JOBS if has_script(tree, rule)]
        scripts = str(tree / "workflow" / "scripts")
        snakefile.write_text("".join(rules).replace("@SCRIPTS@", scripts))
    for rule, (target, bench_file) in JOBS.items():
        labels = [label for label, tree in trees.items() if has_script(tree, rule)]
        if not labels:
            continue
        times: dict = {label: [] for label in labels}
        for _ in range(repeats + 1):  # the first run creates .snakemake/ and byte-compiles
            for label in labels:  # interleaved
                snakefile = workdir / f"Snakefile.{label.replace('/', '_')}"
                cmd = [str(snakemake), target, "-s", str(snakefile), "-d", str(workdir)]
                cmd += ["--cores", "1", "--forceall", "--quiet", "all"]
                t0 = time.perf_counter()
                proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if proc.returncode != 0:
                    sys.exit(
                        f"{rule} job failed ({label}):\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
                    )
                whole = time.perf_counter() - t0
                bench = (workdir / bench_file).read_text().splitlines()
                job = float(bench[1].split("\t")[0])  # column s: the job's own wall time
                times[label].append((whole, job))
        best[rule] = {
            label: (min(w for w, _ in t[1:]), min(j for _, j in t[1:]))
            for label, t in times.items()
        }
    return best


def print_jobs(jobs: dict, labels: list[str], repeats: int) -> None:
    print(f"\none small rule job through snakemake, best of {repeats}:")
    for rule, row in jobs.items():
        if len(row) < len(labels):  # the rule's script is on one side only
            ((label, (whole, job)),) = row.items()
            print(
                f"{rule:26s} job (benchmark: s) {job:6.3f}s; whole command {whole:6.3f}s "
                f"(only in {label})"
            )
            continue
        (wb, jb), (wa, ja) = (row[label] for label in labels)
        print(
            f"{rule:26s} job (benchmark: s) {jb:6.3f}s -> {ja:6.3f}s {jb / ja:5.2f}x "
            f"({ja - jb:+.3f} s); whole command {wb:6.3f}s -> {wa:6.3f}s"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", default="main", help="the 'before' commit (default: main)")
    ap.add_argument("--after", help="the 'after' commit (default: the working tree)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per script (best kept)")
    ap.add_argument("--job", action="store_true", help="also time small real rule jobs")
    ap.add_argument("--scripts", help="comma-separated script names (default: all)")
    args = ap.parse_args()

    def short(ref):
        cmd = ["git", "-C", str(ROOT), "rev-parse", "--short", ref]
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()

    tmp = Path(tempfile.mkdtemp(prefix="bench_startup_"))
    worktrees = []
    try:
        worktrees.append(checkout(args.ref, tmp / "before"))
        trees = {f"{args.ref}@{short(args.ref)}": worktrees[-1]}
        if args.after:
            worktrees.append(checkout(args.after, tmp / "after"))
            trees[f"{args.after}@{short(args.after)}"] = worktrees[-1]
        else:
            trees["worktree"] = ROOT
        labels = list(trees)
        print(f"before: {labels[0]}; after: {labels[1]}; best of {args.repeats}")
        only = args.scripts.split(",") if args.scripts else None
        print_table(time_scripts(trees, args.repeats, only), labels)
        if args.job:
            print_jobs(time_jobs(trees, args.repeats, tmp / "job"), labels, args.repeats)
    finally:
        for where in worktrees:
            remove_worktree(where)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
