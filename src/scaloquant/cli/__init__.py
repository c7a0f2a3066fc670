"""The ``scaloquant`` command: one entry point, one module per subcommand.

Each subcommand module defines ``register(subparsers)``, which adds its parser and sets
``handler=<function(args) -> int>``. Handlers parse, build a config, call the library and write
outputs; a :class:`~scaloquant.errors.ScaloquantError` becomes one line on stderr and exit code 2,
``scaloquant fit: error: ...`` (a nested command by its full name, ``scaloquant basis info``), as
argparse's own refusals do (a mistyped flag or value, a missing argument; without argparse's
usage block, pointing at ``--help``), and so does any ``OSError`` (a full disk, a read-only
folder) and running out of memory (the machine's or a GPU's): the writers are atomic, so such
an error leaves no partial file behind. Ctrl+C (exit 130) and ``SIGTERM`` (``kill``, a batch
system's time limit; exit 143) end a command the same way: one line, its clean-up run, no
partial output, no worker process left running.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import re
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

from ..errors import (
    ConfigError,
    MissingMetadataError,
    NeedsOption,
    ScaloquantError,
    os_error_message,
    out_of_memory_message,
)
from ..formats import fid_titles_text
from ..threads import prefer_command_settings

#: Subcommand modules under ``scaloquant.cli`` with their one-line help, in ``--help`` order.
#: Only the module of the command being run is imported (some import torch or Lightning, which
#: takes seconds); the others appear in ``--help`` through this line alone.
SUBCOMMANDS: dict[str, str] = {
    "basis": "inspect basis sets, or rewrite one as .npz",
    "simulate": "simulate MRS signals from a basis set (the paper's Eq. 1)",
    "scalogram": "compute the Morse scalogram of one FID (.npy array or .png picture)",
    "train": "train a CNN (scalogram or spectrum) or a physics-head model",
    "evaluate": "evaluate trained checkpoints on a simulated test file",
    "reproduce": (
        "simulate, train the scalogram and spectrum CNNs and their physics-head models, "
        "evaluate and compare with the fit"
    ),
    "quantify": f"quantify real spectra ({fid_titles_text()}) with a trained model",
    "fit": "fit real spectra with the classical linear-combination model and its CRLB",
    "convert": "rewrite a FID file as NIfTI-MRS or LCModel .RAW",
    "export": "export a trained model as ONNX (with a JSON of its pre- and post-processing)",
}


class _VersionAction(argparse.Action):
    """``--version``: argparse's version action, with the version read only when asked (see
    ``scaloquant.__getattr__``)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(
            option_strings,
            dest=argparse.SUPPRESS,
            default=argparse.SUPPRESS,
            nargs=0,
            help="show program's version number and exit",
        )

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        from .. import __version__

        print(f"scaloquant {__version__}")
        parser.exit()


class _OneLineParser(argparse.ArgumentParser):
    """argparse's parser whose own refusals (a value not of the flag's type or choices, a
    missing argument, an unknown flag) are one line, as the handlers' are: ``PROG: error:
    MESSAGE (see PROG --help)``, exit 2, where argparse printed its usage block (several lines)
    before it. ``--help`` is unchanged.

    It keeps the parsers of its subcommands as ``add_parser`` returned them
    (:attr:`subcommands`), so that an unknown flag is refused by the command it was given to,
    under that command's name (:meth:`parse_args`), where argparse names the main parser alone
    and points at its help; its subcommands' parsers are of its class (``add_subparsers``'
    default ``parser_class``). It keeps its arguments as ``add_argument`` returned them
    (:attr:`arguments`), where argparse keeps them in private attributes only."""

    #: ``(dest, {name: parser})`` of :meth:`add_subparsers`: the namespace attribute that holds
    #: the chosen subcommand's name, and the parser of every name; None without subcommands.
    subcommands: tuple[str, dict[str, argparse.ArgumentParser]] | None = None
    #: Every argument added by ``add_argument``, to the parser or to one of its argument
    #: groups, as ``add_argument`` returned it, in order (``-h`` first; not the subcommands'
    #: argument of :meth:`add_subparsers`): what tests and tools read a command's flags from.
    arguments: list[argparse.Action]
    #: Whether a word that starts with a dash and a digit after a flag that takes one value is
    #: that value (:meth:`parse_known_args`), as argparse takes a negative number alone
    #: (``-5``, ``-.5``): ``reproduce --snr -5,10`` reaches the command's check of the list,
    #: where argparse took ``-5,10`` for a flag and answered "expected one argument". Set by
    #: the commands whose values may look so.
    dash_digit_values: bool = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.arguments = []  # before argparse's __init__, which adds -h
        super().__init__(*args, **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        self.arguments.append(action)
        return action

    def add_argument_group(self, *args: Any, **kwargs: Any) -> Any:
        return self._keeping(super().add_argument_group(*args, **kwargs))

    def add_mutually_exclusive_group(self, **kwargs: Any) -> Any:
        return self._keeping(super().add_mutually_exclusive_group(**kwargs))

    def _keeping(self, group: Any) -> Any:
        """``group`` (of :meth:`add_argument_group` or :meth:`add_mutually_exclusive_group`,
        or a group of it), whose ``add_argument`` also keeps each action in :attr:`arguments`."""
        add_argument, add_group = group.add_argument, group.add_mutually_exclusive_group

        def add_and_keep(*args: Any, **kwargs: Any) -> argparse.Action:
            action = add_argument(*args, **kwargs)
            self.arguments.append(action)
            return action

        group.add_argument = add_and_keep
        group.add_mutually_exclusive_group = lambda **kwargs: self._keeping(add_group(**kwargs))
        return group

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def add_subparsers(self, **kwargs: Any) -> Any:
        """argparse's, whose ``add_parser`` also keeps each parser it returns (and its aliases)
        in :attr:`subcommands`."""
        action = super().add_subparsers(**kwargs)
        parsers: dict[str, argparse.ArgumentParser] = {}
        self.subcommands = (action.dest, parsers)
        add_parser = action.add_parser

        def add_and_keep(name: str, **options: Any) -> argparse.ArgumentParser:
            parser = add_parser(name, **options)
            parsers.update(dict.fromkeys([name, *options.get("aliases", ())], parser))
            return parser

        action.add_parser = add_and_keep
        return action

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """argparse's; with :attr:`dash_digit_values`, a word that starts with a dash and a
        digit (or a dash, a dot and a digit) and follows a flag of one value is joined to it
        (``--snr -5,10`` -> ``--snr=-5,10``, argparse's own spelling of a value), up to a
        ``--``. Any other such word is left as it is: argparse refuses it (an unrecognized
        argument) or takes it (a negative number) as it would have."""
        words = list(sys.argv[1:] if args is None else args)
        if self.dash_digit_values:
            words = self._dash_digit_values_joined(words)
        return super().parse_known_args(words, namespace)

    def _dash_digit_values_joined(self, words: list[str]) -> list[str]:
        end = words.index("--") if "--" in words else len(words)
        joined: list[str] = []
        for word in words[:end]:
            if joined and _DASH_DIGIT.match(word) and self._takes_one_value(joined[-1]):
                joined[-1] += f"={word}"
            else:
                joined.append(word)
        return joined + words[end:]

    def _takes_one_value(self, word: str) -> bool:
        """Whether argparse reads ``word`` as a flag of this parser that takes one value: one
        of its option strings, or (argparse's ``allow_abbrev``) the start of only one long
        one; read from :attr:`arguments`."""
        options = {o: a for a in self.arguments for o in a.option_strings}
        if word not in options and self.allow_abbrev and word.startswith("--") and "=" not in word:
            starts = [o for o in options if o.startswith("--") and o.startswith(word)]
            word = starts[0] if len(starts) == 1 else word
        return word in options and options[word].nargs in (None, 1)

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        """argparse's, with the arguments no parser knew refused by the innermost command that
        was given one (``scaloquant fit X --bogus``: ``scaloquant fit: error: unrecognized
        arguments: --bogus``); ``parse_known_args`` still returns them."""
        words = list(sys.argv[1:] if args is None else args)
        parsed, unknown = self.parse_known_args(words, namespace)
        if unknown:
            chain = _command_chain(self, parsed)
            owned = _owners(words, [name for _, name in chain[1:]], unknown)
            for (parser, _), extras in reversed(list(zip(chain, owned, strict=True))):
                if extras:
                    parser.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed


#: A word that starts with a dash and a digit, or a dash, a dot and a digit (``-5,10``,
#: ``-1e3``, ``-.5``): a value, never one of the CLI's flags.
_DASH_DIGIT = re.compile(r"-\.?\d")


def _command_chain(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> list[tuple[argparse.ArgumentParser, str]]:
    """The parsers ``args`` went through, outermost first, each with the name it was chosen by
    (``""`` for ``parser`` itself): ``scaloquant basis info`` gives the main parser, ``basis``'
    and ``info``'s; read from :attr:`_OneLineParser.subcommands`."""
    chain = [(parser, "")]
    while (table := getattr(chain[-1][0], "subcommands", None)) is not None:
        dest, parsers = table
        name = getattr(args, dest, None)
        if name is None:
            break
        chain.append((parsers[name], name))
    return chain


def _owners(words: Sequence[str], names: Sequence[str], unknown: Sequence[str]) -> list[list[str]]:
    """``unknown`` (the words no parser knew) split among the parsers of a chain whose
    subcommands were chosen by ``names``: a parser above a subcommand takes no flag with a
    value, so the words before the subcommand's name are its own (``scaloquant --bogus fit``:
    the main parser's), and the words left after the last name are the last parser's."""
    rest = list(unknown)
    owned: list[list[str]] = []
    start = 0
    for name in names:
        at = words.index(name, start)
        mine = [word for word in words[start:at] if word in rest]
        for word in mine:
            rest.remove(word)
        owned.append(mine)
        start = at + 1
    return [*owned, rest]


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; the full options only of the subcommand named in ``argv`` (all if None)."""
    parser = _OneLineParser(
        prog="scaloquant",
        description="Quantify MRS metabolites with CNNs on Morse-wavelet scalograms.",
    )
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    # the first word that is not a flag (the main parser's flags take no value): a command
    # after a mistyped flag gets its full options
    named = [next((word for word in argv if not word.startswith("-")), "")] if argv else []
    chosen = set(SUBCOMMANDS) if argv is None else set(SUBCOMMANDS).intersection(named)
    for name, help_text in SUBCOMMANDS.items():
        if name in chosen:
            importlib.import_module(f"{__name__}.{name}").register(sub)
        else:
            sub.add_parser(name, help=help_text, add_help=False)
    return parser


#: The flags that give the library's options (:data:`scaloquant.errors.OPTION_WORDS`): errors
#: of the pure layers name options by key, and the CLI words them as its flags.
OPTION_FLAGS = {
    "force": "--force",
    "override_freq": "--spectrometer-freq-mhz with --override-header",
    "override_dwell": "--dwell-time-s with --override-header",
    "water": "--water",
    "basis": "--basis",
    "refine": "--refine",
    "mm_parametric": "--mm parametric",
    "mm_spectrum": "--mm-spectrum",
    "ecc": "--ecc",
}


def error_message(err: ScaloquantError, args: argparse.Namespace | None = None) -> str:
    """The one line the user reads: the library's message, options named as flags, a missing
    acquisition value as the flag alone, and a refused config value named by the flag that
    gave it (``cli._common.flag_worded``)."""
    if isinstance(err, NeedsOption):
        return err.worded(OPTION_FLAGS)
    if isinstance(err, MissingMetadataError):
        return err.flag_message  # without the readers' keyword for a Python caller
    if isinstance(err, ConfigError) and args is not None:
        from ._common import flag_worded

        return flag_worded(str(err), args)
    return str(err)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI in-process (tests call this) and return the exit code."""
    # before any subcommand imports torch: OpenMP reads it once (see scaloquant.threads)
    prefer_command_settings()
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    args.argv = argv  # the command line as given, for provenance and the report
    prog = _command_prog(parser, args)
    terminated: list[int] = []
    try:
        with _terminate_as_interrupt(terminated):
            return int(args.handler(args) or 0)
    except ScaloquantError as err:
        print(f"{prog}: error: {error_message(err, args)}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        # a handler that leaves something to continue from says so (train: --resume)
        hint = getattr(args, "interrupt_hint", None)
        what = hint(args) if hint else "no output was written"
        how = "terminated (SIGTERM)" if terminated else "interrupted"
        print(f"{prog}: {how}; {what}", file=sys.stderr)
        return 128 + signal.SIGTERM if terminated else 130
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silences the flush at exit
        return 0
    except OSError as err:
        # after BrokenPipeError (an OSError too); everything that writes is atomic, so the
        # outputs are either complete or absent
        print(f"{prog}: error: {os_error_message(err)}", file=sys.stderr)
        return 2
    except MemoryError as err:
        print(f"{prog}: error: {out_of_memory_message(err)}", file=sys.stderr)
        return 2
    except RuntimeError as err:
        # torch's OutOfMemoryError (a RuntimeError; torch is not imported here): a GPU's
        # memory, taken by other work or by more spectra than fit; the chunked solvers halve
        # a chunk first (scaloquant.fit.batched.halving_on_oom)
        if type(err).__name__ != "OutOfMemoryError":
            raise
        print(f"{prog}: error: {out_of_memory_message(err)}", file=sys.stderr)
        return 2


def _command_prog(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """The full name of the command ``args`` ran (``scaloquant fit``, ``scaloquant basis
    info``): its handler's lines start with it, as argparse's refusals do."""
    return _command_chain(parser, args)[-1][0].prog


@contextlib.contextmanager
def _terminate_as_interrupt(received: list[int]) -> Iterator[None]:
    """While a command runs, ``SIGTERM`` (``kill``, a batch system's time limit) ends it as
    Ctrl+C does: raised as ``KeyboardInterrupt`` (noted in ``received``), so that its clean-up
    runs (staging folders removed, worker processes ended), where Python's default would end
    the process on the spot and leave them. A second ``SIGTERM`` during the clean-up is
    ignored. In the main thread only (``signal`` allows no other); the former handler comes
    back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        if not received:
            received.append(signum)
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def run() -> None:  # pragma: no cover - console-script shim
    sys.exit(main())
