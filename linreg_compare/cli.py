"""The command line: the comparison by default, the subcommands ``equivalences`` and ``sweep KIND``.

Every usage error is one line on standard error and exit status 2; any other error one line and status 1
(``--debug`` shows the traceback instead).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import warnings

import impls
from linreg_compare.capabilities import has_learning_rate, names_that, trains_data_parallel
from linreg_compare.checks import DataError, Settings, UsageError, check_memory, settings_of
from linreg_compare.cluster import TIMEOUT, check_scheduler, dask_scheduler
from linreg_compare.files import check_not_input, check_output, staged_outputs, write_text, write_utf8
from linreg_compare.read import diagnose_files, many_files
from linreg_compare.render import FORMATS
from linreg_compare.step_size import StepSizeWarning

DEFAULT = Settings()  # every flag's default, defined once, in Settings

LONG_PLOT_FEATURES = 1000  # from this many features, drawing the loss contours takes seconds: say so first


def _lr(text: str):
    """--lr: a number, or auto."""
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0 or auto; got {text!r}") from None


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each flag's default, except where there is none to show (the help says what happens then)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or action.default == argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


class _Once(argparse.Action):
    """A flag given at most once: a second value is refused, not silently taken over the first."""

    def __call__(self, parser, namespace, values, option_string=None):
        if getattr(namespace, self.dest, None) is not None:
            parser.error(
                f"{option_string} was given twice ({getattr(namespace, self.dest)!r}, then {values!r}); give it once"
            )
        setattr(namespace, self.dest, values)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on standard error and exit status 2."""

    def error(self, message):
        where = ""
        words = message.split(":", 1)[-1].split()
        if message.startswith("unrecognized arguments") and any(word in self._option_string_actions for word in words):
            where = "; compare.py's own flags go before a subcommand (sweep lr-batch takes --data and --target there)"
        raise UsageError(f"{message}{where} (see {self.prog} --help)")


def _add_output_flags(parser, what="the report") -> None:
    add = parser.add_argument
    add("--seed", type=int, default=DEFAULT.seed, help="seeds the data, the initial weights and the minibatch order")
    add("--format", default="table", choices=FORMATS, help="output format")
    add("--output", metavar="PATH", help=f"write {what} to PATH (whole or not at all) instead of standard output")
    add("--debug", action="store_true", help="show the traceback of an error instead of one line")


def parser() -> argparse.ArgumentParser:
    top = _Parser(
        prog="compare.py",
        description="Fit linear regression four ways on the same data and compare estimates, losses and times. "
        "Defaults reproduce the d2l notebook: y = Xw + b + noise, "
        f"w = {list(impls.NOTEBOOK_W)}, b = {impls.NOTEBOOK_B}, "
        "1000 examples, "
        "noise 0.01, minibatches of 10, lr 0.03, 3 epochs.",
        formatter_class=_HelpFormatter,
    )
    add = top.add_argument
    add(
        "--impl",
        action="append",
        metavar="NAME",
        help=f"implementation to run, repeatable: {', '.join(impls.NAMES)} (default: all)",
    )
    add("--num-examples", type=int, default=DEFAULT.num_examples, help="training examples drawn from the generator")
    add(
        "--true-w",
        type=float,
        nargs="+",
        metavar="W",
        help=f"true weights, one per feature (default: {' '.join(map(str, impls.NOTEBOOK_W))}; none for --data)",
    )
    add("--true-b", type=float, help=f"true bias (default: {impls.NOTEBOOK_B}; none for --data)")
    add("--noise", type=float, default=DEFAULT.noise, help="standard deviation of the Gaussian noise added to y")
    add("--batch-size", type=int, default=DEFAULT.batch_size, help="minibatch size of the iterative implementations")
    add(
        "--lr",
        type=_lr,
        default=DEFAULT.lr,
        help="learning rate (the notebook's convention: MSE averaged over the batch), or auto: a step set from the "
        "training data, a fraction of each implementation's stability limit",
    )
    add(
        "--num-epochs",
        type=int,
        default=DEFAULT.num_epochs,
        help="passes over the data of the iterative implementations",
    )
    add(
        "--repeats",
        type=int,
        default=DEFAULT.repeats,
        help="timed fits per implementation at most, after one untimed warm-up",
    )
    add(
        "--max-seconds",
        type=float,
        default=DEFAULT.max_seconds,
        help="stop timing an implementation once this many seconds are spent on it (at least one timed fit)",
    )
    add("--device", default="cpu", help="torch device of the torch implementations (cpu, cuda)")
    add(
        "--dtype",
        default=DEFAULT.dtype,
        choices=["float32", "float64"],
        help="dtype of the synthetic data and of torch's arithmetic",
    )
    add(
        "--data",
        metavar="PATH",
        help="fit your own data instead of synthetic data: a CSV with a header row or a "
        ".parquet file, or a directory or glob ('dir/*.parquet') of them, read with dask; needs --target",
    )
    add("--target", metavar="COLUMN", action=_Once, help="the column of --data to predict (one)")
    add("--features", metavar="A,B,...", help="the columns of --data to predict from (default: all but the target)")
    add(
        "--weights",
        metavar="COLUMN",
        help="with one --data file: the column of sample weights (weighted least squares; every fit weighted)",
    )
    add("--dropna", action="store_true", help="drop the rows of --data with a missing value (the report says how many)")
    add(
        "--standardize",
        action=argparse.BooleanOptionalAction,
        help="fit the iterative implementations on features scaled to mean 0 and variance 1, reported in the data's "
        "units (default: on with --data, off for the synthetic data)",
    )
    add(
        "--test-fraction",
        type=float,
        metavar="F",
        help="with --data: hold out this fraction of the rows, a seeded random split, to score every fit on "
        "(default 0.2; 0 trains on every row)",
    )
    add("--cv", type=int, metavar="K", help="with --data: K-fold cross-validated test MSE of every implementation")
    add(
        "--until",
        type=float,
        metavar="T",
        help="train each iterative implementation epoch by epoch (--num-epochs at most) until every parameter is "
        "within T standard errors of least squares, and report the epochs and seconds it took",
    )
    add(
        "--average",
        action="store_true",
        help="report each iterative implementation's tail average of its iterates (at least the last half of the "
        "epochs), which reaches least squares where constant steps settle in a noise cloud around it",
    )
    add(
        "--scheduler",
        metavar="WHERE",
        help="read --data with dask and fit the closed form there: threads (this process; the default for a "
        "directory or glob), processes (local worker processes on 127.0.0.1) or a running scheduler's "
        "tcp://host:port (needs the dask extra)",
    )
    add(
        "--timeout",
        type=float,
        default=TIMEOUT,
        metavar="SECONDS",
        help="with --scheduler processes or tcp://: the longest wait for the cluster (connecting, its first "
        "answer, each computation) before giving up with one line",
    )
    add("--dashboard", action="store_true", help="with --scheduler processes: serve dask's dashboard on 127.0.0.1:8787")
    add(
        "--sample",
        type=int,
        metavar="N",
        help="with --data read by dask: fit the iterative implementations on a uniform sample of N rows "
        "(default: all rows if they fit in memory, else they are skipped); scores are over all rows",
    )
    add(
        "--plot",
        metavar="PATH.png",
        help="also draw the loss curves and parameter paths to this PNG (needs matplotlib)",
    )
    _add_output_flags(top)

    commands = top.add_subparsers(
        dest="command", title="commands (default: the comparison)", metavar="COMMAND", parser_class=_Parser
    )
    study = {"formatter_class": _HelpFormatter}
    equivalences = commands.add_parser(
        "equivalences",
        help="the notebook's exercise (mean vs sum loss), proved step by step",
        **study,
        description="Pairs of configurations on the same data, initial parameters and minibatches, compared at "
        "every step: mean vs sum loss, the ½ of the squared loss, DataLoader vs own batching, uneven batches.",
    )
    add = equivalences.add_argument
    add(
        "--num-examples",
        type=int,
        default=DEFAULT.num_examples,
        help="examples; the uneven pairs use this plus half a batch",
    )
    add("--batch-size", type=int, default=DEFAULT.batch_size, help="minibatch size B")
    add("--lr", type=float, default=DEFAULT.lr, help="the notebook's learning rate a (MSE averaged over the batch)")
    add("--num-epochs", type=int, default=DEFAULT.num_epochs, help="passes over the data")
    add(
        "--distributed",
        type=int,
        nargs="?",
        const=2,
        metavar="W",
        help="add the data-parallel pairs: each torch implementation on W ranks (default 2) that this command "
        "spawns (torch.distributed, gloo, 127.0.0.1) vs one process with the same global batch",
    )
    add("--plot", metavar="PATH.png", help="also draw the study's picture to this PNG (needs matplotlib)")
    _add_output_flags(equivalences, "the study")

    sweep = commands.add_parser(
        "sweep",
        help="the book's other exercises: sweep lr-batch | data-size | init",
        description="The book's other exercises, as sweeps.",
        **study,
    )
    kinds = sweep.add_subparsers(dest="kind", title="kinds", metavar="kind", parser_class=_Parser, required=True)
    for kind, text in [
        ("lr-batch", "final training MSE for each learning rate and batch size"),
        ("data-size", "error against data size for all four, beside least squares' theory"),
        ("init", "zeros vs the notebook's N(0, 0.01²) vs large initial weights"),
    ]:
        one = kinds.add_parser(kind, help=text, description=text[0].upper() + text[1:] + ".", **study)
        if kind == "lr-batch":
            one.add_argument(
                "--impl",
                metavar="NAME",
                help="implementation of the sweep, one with a learning rate (default: the first)",
            )
        one.add_argument(
            "--plot", metavar="PATH.png", help="also draw the study's picture to this PNG (needs matplotlib)"
        )
        _add_output_flags(one, "the study")
    return top


def run_report(args, compare):
    """The comparison the flags ask for, made by ``compare`` (``compare.compare``, which is given, not
    imported, so that compare.py may import this module)."""
    if (args.data is None) != (args.target is None):
        raise UsageError("--data and --target go together: give the data file and the column to predict")
    if args.features is not None and args.data is None:
        raise UsageError("--features picks columns of --data; give --data and --target too")
    if args.dropna and args.data is None:
        raise UsageError("--dropna drops rows of --data with a missing value; give --data and --target too")
    dask = args.data is not None and (args.scheduler is not None or many_files(args.data))
    if args.weights is not None and (args.data is None or dask):
        raise UsageError("--weights names a column of one --data file (read in memory, not with dask)")
    if (args.scheduler is not None or args.sample is not None) and not dask:
        raise UsageError(
            "--scheduler and --sample apply to --data read with dask (a directory, a glob, or a file with --scheduler)"
        )
    if not (0 < args.timeout < math.inf):
        raise UsageError(f"--timeout must be a number of seconds > 0; got {args.timeout!r}")
    if args.scheduler is not None:
        check_scheduler(args.scheduler)
    settings = {**settings_of(args), "record_paths": args.plot is not None, "progress": True}
    features = None if args.features is None else [name.strip() for name in args.features.split(",")]
    if dask:
        from linreg_compare.read import read_dask

        scheduler = "threads" if args.scheduler is None else args.scheduler
        with dask_scheduler(scheduler, args.timeout, args.dashboard):
            try:
                X, y, names, count, dropped = read_dask(args.data, args.target, features, args.dropna)
                name = f"{args.data} ({count} file{'s' * (count > 1)}, dask {scheduler.split('://')[0]})"
                name += _dropped(dropped)
                return compare(
                    args.impl,
                    X=X,
                    y=y,
                    true_w=args.true_w,
                    true_b=args.true_b,
                    data_name=name,
                    feature_names=names,
                    target_name=args.target,
                    **settings,
                )
            except (ValueError, TypeError) as exc:
                if isinstance(exc, UsageError) and not isinstance(exc, DataError):
                    raise
                # dask read a bad value without saying where: find the file and line, or let the error be.
                diagnose_files(args.data, args.target, features)
                raise
    if args.data is not None:
        from linreg_compare.read import read_data

        X, y, names, dropped, weights = read_data(args.data, args.target, features, args.dropna, args.weights)
        return compare(
            args.impl,
            X=X,
            y=y,
            sample_weight=weights,
            true_w=args.true_w,
            true_b=args.true_b,
            data_name=args.data + _dropped(dropped),
            feature_names=names,
            target_name=args.target,
            **settings,
        )
    return compare(args.impl, true_w=args.true_w, true_b=args.true_b, **settings)


def _dropped(rows: int) -> str:
    return f" ({rows} row{'s' * (rows != 1)} with a missing value dropped, --dropna)" if rows else ""


def run_study(args):
    """The study the subcommand asks for."""
    from linreg_compare import study, sweeps

    if (args.data is None) != (args.target is None):
        raise UsageError("--data and --target go together: give the data file and the column to predict")
    if args.command == "equivalences":
        Settings(
            num_examples=args.num_examples,
            batch_size=args.batch_size,
            lr=args.lr,
            num_epochs=args.num_epochs,
            seed=args.seed,
        )
        if args.distributed is not None:
            from linreg_compare.distributed import RANK_MEMORY

            if not 2 <= args.distributed <= 64:
                raise UsageError(f"--distributed must be a number of ranks from 2 to 64; got {args.distributed}")
            ranks = names_that(trains_data_parallel)
            check_memory(args.num_examples, 2, 0, "float32", ranks, args.distributed, RANK_MEMORY)
        return study.equivalences(
            num_examples=args.num_examples,
            batch_size=args.batch_size,
            lr=args.lr,
            num_epochs=args.num_epochs,
            seed=args.seed,
            world_size=args.distributed or 1,
        )
    Settings(seed=args.seed, seeds_used=5 if args.kind == "data-size" else 1)
    if args.kind == "lr-batch":
        stepping = names_that(has_learning_rate)
        if args.impl is not None and args.impl not in stepping:
            raise UsageError(f"--impl of the lr-batch sweep must be one of {', '.join(stepping)}; got {args.impl!r}")
        if args.data is None:
            return sweeps.sweep_lr_batch(impl=args.impl, seed=args.seed)
        from linreg_compare.read import read_data

        if many_files(args.data):
            raise UsageError("sweep lr-batch reads one --data file (CSV or Parquet), not a directory or glob")
        features = None if args.features is None else [name.strip() for name in args.features.split(",")]
        X, y, _, dropped, _ = read_data(args.data, args.target, features, args.dropna)
        standardize = True if args.standardize is None else args.standardize
        return sweeps.sweep_lr_batch(
            impl=args.impl, seed=args.seed, X=X, y=y, standardize=standardize, data_name=args.data + _dropped(dropped)
        )
    if args.kind == "data-size":
        return sweeps.sweep_data_size(seeds=tuple(range(args.seed, args.seed + 5)))
    return sweeps.sweep_init(seed=args.seed)


# The top-level flags a subcommand reads: the lr × batch sweep runs on --data as the comparison does.
SUBCOMMAND_FLAGS = {("sweep", "lr-batch"): ("--data", "--target", "--features", "--dropna", "--standardize")}


def check_top_level_flags(top: argparse.ArgumentParser, argv: list[str], args) -> None:
    """Refuse a flag given before a subcommand that the subcommand would ignore (``--lr 0.1 sweep init``)."""
    if args.command is None:
        return
    given = argv[: argv.index(args.command)] if args.command in argv else []
    used = SUBCOMMAND_FLAGS.get((args.command, getattr(args, "kind", None)), ())
    for token in given:
        name = token.split("=")[0]
        if not name.startswith("--"):
            continue
        for action in top._actions:
            flag = next((option for option in action.option_strings if option.startswith(name)), None)
            allowed = any(option in used for option in action.option_strings) or flag in ("--help", "--debug")
            if flag is not None and not allowed:
                what = " ".join(filter(None, [args.command, getattr(args, "kind", None)]))
                takes = f"; it takes {', '.join(used)} from before it" if used else ""
                raise UsageError(
                    f"{flag} applies to the comparison, not to '{what}', which would ignore it "
                    f"(its own flags go after it: compare.py {what} --help){takes}"
                )


def run(args, compare) -> int:
    """Check every output before any work, compute, then write all the outputs together."""
    to_file = args.output not in (None, "-")
    for path, flag in [(args.output if to_file else None, "--output"), (args.plot, "--plot")]:
        check_output(path, flag)
        check_not_input(path, flag, args.data)
    if args.plot is not None:
        _check_can_plot(args.plot)
        if to_file and os.path.abspath(args.plot) == os.path.abspath(args.output):
            raise UsageError(f"--output and --plot both name {args.plot}; give them different files")
    result = run_report(args, compare) if args.command is None else run_study(args)
    text = result.render(args.format)
    with staged_outputs() as stage:
        if to_file:
            stage(args.output, lambda temporary: write_utf8(temporary, text))
        if args.plot is not None:
            from linreg_compare import plot

            if args.command is None and result.data[0].shape[1] >= LONG_PLOT_FEATURES:
                print(
                    f"compare.py: drawing {args.plot}: the loss over a grid of "
                    f"{result.data[0].shape[1] + 1}-parameter models…",
                    file=sys.stderr,
                    flush=True,
                )
            figure = plot.draw_comparison(result) if args.command is None else plot.draw_study(result)
            stage(args.plot, plot.png_writer(figure))
    if not to_file:
        write_text(None, text)
    if args.command is None and all(row["status"].startswith(("error", "skipped")) for row in result.results):
        print("compare.py: error: no implementation produced a result (see the status column)", file=sys.stderr)
        return 1
    return 0


def _check_can_plot(path: str) -> None:
    if not path.lower().endswith(".png"):
        raise UsageError(f"--plot must name a .png file; got {path!r}")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install matplotlib (or the package's [plot] extra)") from None


def main(argv, compare) -> int:
    """The command line: ``argv`` (None: sys.argv), the comparison made by ``compare``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warning(warnings.showwarning)
        return _main(argv, compare, debug)


def _one_line_warning(show):
    """The step-size warning on the command line: one line, as the errors are (others as ``show`` shows them)."""

    def one_line(message, category, *args, **kwargs) -> None:
        if issubclass(category, StepSizeWarning):
            print(f"compare.py: warning: {message}", file=sys.stderr, flush=True)
        else:
            show(message, category, *args, **kwargs)

    return one_line


def _main(argv, compare, debug: bool) -> int:
    try:
        top = parser()
        args = top.parse_args(argv)
        check_top_level_flags(top, argv, args)
        return run(args, compare)
    except UsageError as exc:
        if debug:
            raise
        print(f"compare.py: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("compare.py: interrupted; no output file was left half-written", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the command line promises one line, not a traceback
        if debug:
            raise
        print(f"compare.py: error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", file=sys.stderr)
        return 1
