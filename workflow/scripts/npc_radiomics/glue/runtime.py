"""Per-job runtime set-up: thread limits and logging.

A cluster node is often shared, so a job must use exactly the threads it declares:
SimpleITK's global pool, BLAS/OpenMP pools (numpy, scikit-learn, xgboost, lightgbm).
"""

from __future__ import annotations

import logging
import os
import sys

_THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)

_limiter = None


def limit_threads(n: int) -> None:
    """Limit every thread pool of this process (and its children) to ``n`` threads."""
    global _limiter
    n = max(1, int(n))
    for var in _THREAD_ENV_VARS:
        os.environ[var] = str(n)
    # threadpoolctl covers pools that were loaded before the env vars were set.
    from threadpoolctl import threadpool_limits

    _limiter = threadpool_limits(limits=n)
    # ITK reads this when SimpleITK is first imported: a job that never images does not
    # pay for importing SimpleITK here; one that imported it already is limited directly.
    os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(n)
    sitk = sys.modules.get("SimpleITK")
    if sitk is not None:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(n)


def setup_logging(log_path: str | None = None, level: int = logging.INFO) -> logging.Logger:
    """Send the package's log records to ``log_path`` (or stderr) with timestamps."""
    handler: logging.Handler
    if log_path:
        handler = logging.FileHandler(log_path, mode="w")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("npc_radiomics")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    return logger


def rule_setup(snakemake) -> logging.Logger:
    """Common start of every rule script: thread limits, then logging to the rule's log;
    the code-version param (for Snakemake's rerun triggers only) is taken out of params."""
    from npc_radiomics.glue.codehash import strip_code_version

    strip_code_version(snakemake)
    limit_threads(snakemake.threads)
    log = snakemake.log[0] if len(snakemake.log) else None
    return setup_logging(log)
