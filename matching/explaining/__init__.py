"""Explaining: turning scores and a solved assignment into words a coordinator can act on.

* :mod:`~matching.explaining.explanations` — why each pair was chosen (feature × weight) and
  why each unmatched request was left out (the rule that removed its candidates, with counts);
* :mod:`~matching.explaining.supply` — shortages of capacity per category and region, checked
  before solving.

Nothing here changes a score or an assignment.
"""
