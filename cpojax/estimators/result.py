"""The result object shared by every failure-probability estimator."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from cpojax.estimators.stats import norm_ppf

__all__ = ["FailureResult", "InvalidModelOutput"]


class InvalidModelOutput(RuntimeError):
    """Raised when a limit-state function returned NaN or inf for some samples.

    Estimators never drop such samples silently: they count them inside the jitted
    loop and raise this error on the host with the count.

    Attributes:
      n_invalid: number of invalid samples among those evaluated, when known.
    """

    def __init__(self, message: str, n_invalid: int | None = None):
        super().__init__(message)
        self.n_invalid = n_invalid


@dataclasses.dataclass(frozen=True)
class FailureResult:
    """Estimate of a failure probability P[min_k g_k(U) < 0], U ~ N(0, I_dim).

    Attributes:
      pf: point estimate of the failure probability.
      ci: two-sided 95 % interval (Clopper-Pearson for crude Monte Carlo; method
        specific otherwise, documented by each estimator; (0, 1) for FORM, which
        claims no interval).
      cov: coefficient of variation (standard error / pf) of the estimate; inf when
        pf == 0 or when the method has no error estimate (FORM).
      n_evals: number of limit-state evaluations (rows of u passed to the function).
      method: the method that produced the estimate ("mc", "form", "is", ...).
      reliable: False when the method's own checks say the answer cannot be trusted.
      n_fail: number of failing samples (crude Monte Carlo), else None.
      fail_counts: failures per limit-state column (crude MC: samples whose column
        k is < 0, counted independently for each k), or None.
      n_invalid: samples where the model returned NaN/inf (always 0 in a returned
        result: a non-zero count raises InvalidModelOutput).
      diagnostics: method-specific details (design points, effective sample size,
        convergence history, ...).
      state: crude Monte Carlo only: a small JSON-friendly dict from which
        :func:`~cpojax.estimators.mc.estimate_mc` resumes the run (``state=``);
        None for the other methods. Not part of :meth:`to_dict`.
    """

    pf: float
    ci: tuple[float, float]
    cov: float
    n_evals: int
    method: str
    reliable: bool = True
    n_fail: int | None = None
    fail_counts: tuple[int, ...] | None = None
    n_invalid: int = 0
    diagnostics: dict[str, Any] = dataclasses.field(default_factory=dict)
    state: dict[str, Any] | None = None

    @property
    def beta(self) -> float:
        """Generalised reliability index β = −Φ⁻¹(pf)."""
        if self.pf <= 0.0:
            return math.inf
        return -norm_ppf(min(self.pf, 1.0))

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (no diagnostics, no state).

        ``cov`` is None where it is not finite (pf = 0, FORM): JSON has no infinity.
        """
        d = {
            "pf": self.pf,
            "ci": list(self.ci),
            "cov": self.cov if math.isfinite(self.cov) else None,
            "n_evals": self.n_evals,
            "method": self.method,
            "reliable": self.reliable,
        }
        if self.n_fail is not None:
            d["n_fail"] = self.n_fail
        if self.fail_counts is not None:
            d["fail_counts"] = list(self.fail_counts)
        return d
