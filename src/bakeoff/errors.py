"""The one error family the CLI catches: each carries a one-line message and an exit status."""


class BakeoffError(Exception):
    """A failure bakeoff can explain in one line; `exit_code` 2 means bad usage, 1 a failed check."""

    exit_code = 1


class UsageError(BakeoffError):
    """The user asked for something that cannot be done as asked (bad flag, missing file)."""

    exit_code = 2


class SpecError(UsageError):
    """A model spec is malformed: bad YAML, unknown layer, shapes that do not fit together."""


class PairError(UsageError):
    """A bring-your-own torch/Keras pair cannot be loaded or its layers cannot be matched."""


class WorkerError(BakeoffError):
    """A framework worker process failed; the message is the worker's own last word."""


class ParityFailure(BakeoffError):
    """The twins compute different things beyond tolerance."""
