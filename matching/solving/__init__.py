"""Solving: the exact capacitated assignment of requests to providers, with its proof.

Read in this order:

* :mod:`~matching.solving.solve` — the entry point :func:`solve_assignment`: validation,
  pins and forbidden pairs, then the engines below, then the certificate;
* :mod:`~matching.solving.certificate` — :func:`dual_bound`, the upper bound any
  non-negative provider prices prove (why every answer is checked, not trusted);
* :mod:`~matching.solving._market` and :mod:`~matching.solving._auction` — the
  forward/reverse auction (Bertsekas) over priced provider slots, with
  :mod:`~matching.solving._reverse` (reverse rounds) and
  :mod:`~matching.solving._price_update` (global price updates by shortest paths);
* :mod:`~matching.solving._freeze` and :mod:`~matching.solving._exact` — small stuck
  components handed to an exact shortest-path solve;
* :mod:`~matching.solving._lp` — HiGHS, the polynomial fallback when the auction does not
  certify in its budget;
* :mod:`~matching.solving.team` — requests wanting several distinct providers (teams): the
  transportation LP with unit pair capacities, solved by HiGHS, with its own certificate.

Nothing here scores or explains; it only takes a sparse gain matrix and capacities
(and, for teams, each request's demand).
"""

from matching.solving.certificate import dual_bound
from matching.solving.solve import GAP_TOL, SolveResult, solve_assignment

__all__ = ["GAP_TOL", "SolveResult", "dual_bound", "solve_assignment"]
