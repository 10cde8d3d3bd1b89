"""How often each deep claim's test says "reproduced", measured on simulated tables.

Every claim that reads the deep tables is judged here by its own registered judge on tables
drawn at random, as many times as asked, with

- **no effect** (the claim false, at the boundary where its test is hardest to hold: the NLL
  flat in β; a flat, flat-then-falling or monotone score for the peak; λ changing nothing, or
  changing nothing at one setting while it helps at every other; a score exactly at its
  permutation null's upper 95 % point): the fraction "reproduced" is the test's false
  "reproduced" rate, which its level promises to keep at or below α;
- **a planted effect** (the claim true by a clear margin, 3 noise units per compared setting):
  the fraction "reproduced" is the test's power.

The modules, from the bottom up:

- :mod:`.simulation`: the paper's grid, the noise of one run (``NOISES``), ``NEUTRAL`` (the
  columns every claim's table has) and ``simulate``, which draws a deep_metrics table;
- :mod:`.builders`: the means and the tables each claim's scenarios draw, with and without the
  planted ``EFFECT``;
- :mod:`.scenarios`: every deep claim's scenarios (``SCENARIOS``) and ``calibrate``, the
  fraction of random tables of one scenario on which its claim is reproduced.

``benchmarks/bench_claims_calibration.py`` prints the full table; ``tests/test_calibration.py``
holds a reduced version to its bounds.
"""
