"""The runner's parts, one module per role; ``compare.py`` at the top level reads as their flow.

``checks`` (settings and arrays), ``read`` (a user's file), ``fit`` (fitting and timing), ``score`` (one
result row per fitted estimator), ``report`` (the comparison's result), ``render`` (tables, markdown,
JSON, CSV), ``plot`` (matplotlib, only when asked), ``study`` (the notebook's exercise and the sweeps),
``files`` (writing outputs whole or not at all) and ``cli`` (the command line).
"""
