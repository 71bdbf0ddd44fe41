"""Scoring: how well each provider fits each request, before anything is solved.

Read in this order:

* :mod:`~matching.scoring.weights` — the five features and their weights (the only knobs);
* :mod:`~matching.scoring.glossary` and :mod:`~matching.scoring.text` — the bilingual
  glossary and the TF-IDF text model that turns colloquial problems into comparable vectors;
* :mod:`~matching.scoring.features` — skill, industry, region and rating fits in [0, 1];
* :mod:`~matching.scoring.blocks` — requests and providers grouped so that only pairs that
  can be matched are ever scored;
* :mod:`~matching.scoring.candidates` — hard rules plus the top-K candidates per request, the
  sparse score matrix the solver receives.

Nothing here solves or explains; it only produces scores.
"""
