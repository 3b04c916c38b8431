"""The closed form's machinery: what makes ``impls/numpy_closed_form.py`` exact on hard data and able to read data
larger than memory, on dask, sparse, or a block at a time.

The textbook solution is ``textbook_solution`` in ``impls/numpy_closed_form.py``: the normal equations of the centred
data, X̃ᵀWX̃ w = X̃ᵀWỹ, solved by Cholesky (never inverted), then b = ȳ − x̄ᵀw. ``NumpyClosedFormRegressor.fit`` runs it
on every well-conditioned problem, in four phases, each in a file here:

1. prepare (``prepare.py``): validate (X, y, sample_weight), weights times a power of two, the moments in one pass.
2. solve: ``textbook_solution`` on the system of ``centred_system.py``, refined against the data where that can change
   a digit, or a QR or SVD where X̃ᵀX̃ is ill-conditioned (``solvers.py``).
3. statistics (``statistics.py``): σ², the standard errors and R², as statsmodels' OLS and WLS give them.
4. intercept: b = ȳ − x̄ᵀw in extended precision (``centred_system.py``, ``CentredSystem.intercept``).

The files, in the order a fit uses them:

- ``prepare.py``: ``prepare`` (a fit's data, weights and moments, as ``Prepared``) and ``add_block`` (a stream's).
- ``moments.py``: the moments ZᵀWZ of Z = [X − x_shift, 1, Y − y_shift] (least squares' sufficient statistics), summed
  over row blocks, with the residual of a pilot solution beside Y; the shifts that keep centring exact; sparse X.
- ``blas_threads.py``: the row blocks shared out among threads, and BLAS's own threads (the SGD wrapper uses it too).
- ``centred_system.py``: ``CentredSystem``, the centred normal equations of one target from the moments: Cholesky
  solve, condition number, RSS from the moments, and the intercept.
- ``solvers.py``: what reads the data again: ``Passes`` (``RowBlocks`` in memory, ``SparsePasses``) refine the
  textbook solution, or solve ill-conditioned data by a column-pivoted QR refined by Björck's method, or give the
  minimum-norm answer by SVD; ``SufficientStatistics`` solves from the moments alone; ``Solution``, what a solver found.
- ``refinement.py``: iterative refinement, with residuals and [1, X]ᵀr in double-double arithmetic.
- ``double_double_factor.py``: the triangular factor of √w·[1, X, Y] in double-double, updated block by block, and the
  least-squares answers it holds (back substitution, or the minimum-norm SVD).
- ``streaming.py``: ``Stream``, the data read once (``partial_fit``, ``fit_blocks``): that factor, or the moments.
- ``statistics.py``: ``ols_statistics`` and ``fit_statistics``.
- ``dask.py``: the same passes on dask collections, one task per chunk (``Chunks``), and a TSQR and CholeskyQR for
  ill-conditioned dask data; dask is imported only when the data already are dask objects.
"""
