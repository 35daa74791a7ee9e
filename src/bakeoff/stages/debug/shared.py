"""What the debug stage's parent and its framework workers share: the planted faults, the tools of each
framework, which (fault, tool, mode) cases exist, and how a tool's message is read (does it name the
layer, the op, the source line?). Framework code imports this module, never the stage's orchestration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bakeoff.stages.train.shared import MODES

# The five modes of the two frameworks' own (Keras on other backends is not debugged here).
DEBUG_MODES = ("torch-eager", "torch-compile", "keras-eager", "keras-graph", "keras-xla")

# fault -> what is planted, in words (the report shows it).
FAULTS: dict[str, str] = {
    "nan": "a layer normalizes over an axis of size 1: 0/0 = NaN in its output from the fault step on",
    "grad": "exploding gradient: a layer's backward multiplies the gradient by 1e10 more each step from "
    "the fault step on (its forward is the identity), until it overflows float32",
    "shape": "a layer reshapes to a hard-coded batch size; the last, partial batch arrives at the fault step",
    "dtype": "a layer adds a float64 constant made with numpy to a float32 activation",
}
# The layer planted after the twin's first layer, named after its fault, and the op that goes wrong.
FAULT_LAYER = {fault: f"fault_{fault}" for fault in FAULTS}
FAULT_OPS: dict[str, tuple[str, ...]] = {
    "nan": ("div", "truediv", "sqrt", "rsqrt"),
    "grad": ("mul", "scalegradient", "identityn", "custom_gradient", "backward"),
    "shape": ("reshape", "view"),
    "dtype": ("add", "addv2"),
}
# Faults whose symptom is a non-finite number rather than an error: the finite-checking tools apply.
NUMERIC = ("nan", "grad")

# framework -> tool -> what it is.
TOOLS: dict[str, dict[str, str]] = {
    "torch": {
        "none": "no tool: whatever PyTorch raises by itself (eager op, or the compiled graph)",
        "detect_anomaly": "torch.autograd.detect_anomaly() around the training loop",
        "isfinite": "a forward hook on every layer: torch.isfinite(output).all(), else raise",
        "bakeoff": "bakeoff's finder: every layer's activation and activation gradient checked each step",
    },
    "keras": {
        "none": "no tool: whatever TensorFlow/Keras raises by itself",
        "check_numerics": "tf.debugging.enable_check_numerics()",
        "assert": "tf.debugging.assert_all_finite on every layer's output",
        "terminate_on_nan": "keras.callbacks.TerminateOnNaN() in fit",
        "run_functions_eagerly": "tf.config.run_functions_eagerly(True): fit's function run as Python",
        "bakeoff": "bakeoff's finder: every layer's activation and activation gradient checked each step",
    },
}
DEFAULT_MODES = {"torch": "torch-eager", "keras": "keras-graph"}  # what a user gets without asking

# The fault step: steps before it are clean (the tool's overhead is timed on them, the first left out as
# warm-up and compile), then the fault acts; a run stops AFTER_STEPS steps past it if nothing is found.
FAULT_STEP = 8
AFTER_STEPS = 6
BATCH = 32


@dataclass(frozen=True)
class DebugOptions:
    modes: tuple[str, ...] = DEBUG_MODES
    probe_modes: tuple[str, ...] = DEBUG_MODES
    faults: tuple[str, ...] = tuple(FAULTS)
    seed: int = 0
    threads: int = 1
    probe: bool = True  # the pdb/print probe (one subprocess per framework)
    timeout: float = 240.0  # per case, and per probe subprocess


def applies(fault: str, tool: str, mode: str) -> bool:
    """Cases that say something: finite checks for numeric faults, run_functions_eagerly where there is
    a function to un-compile, bakeoff's finder in the eager modes it replays."""
    framework, how = MODES[mode]
    if tool not in TOOLS[framework]:
        return False
    if tool == "none":
        return True
    if tool == "run_functions_eagerly":
        return how != "eager"
    if tool == "bakeoff":
        return how == "eager" and fault in NUMERIC
    return fault in NUMERIC


def cases(framework: str, options: DebugOptions) -> list[tuple[str, str, str]]:
    """(fault, tool, mode) of one framework, in table order."""
    return [
        (fault, tool, mode)
        for fault in options.faults
        for mode in options.modes
        if MODES[mode][0] == framework
        for tool in TOOLS[framework]
        if applies(fault, tool, mode)
    ]


def case_name(fault: str, tool: str, mode: str) -> str:
    return f"{fault}/{tool}/{mode}"


def fault_lines(source: Path) -> dict[str, int]:
    """fault -> line of the op that goes wrong, marked `# fault-line: NAME` in a framework's debug.py."""
    lines = {}
    for number, text in enumerate(source.read_text().splitlines(), start=1):
        found = re.search(r"# fault-line: (\w+)", text)
        if found:
            lines[found.group(1)] = number
    return lines


@dataclass
class Outcome:
    """What one (fault, tool, mode) case showed the user."""

    found: bool = False
    step: int | None = None  # the step at which the tool raised or stopped; -1: while building the model
    message: str = ""  # the exception's first line, or the tool's stop message
    said: str = ""  # what the tool or error said: the exception's whole text, warnings, printed lines
    text: str = ""  # the traceback the user saw
    loss_nonfinite_step: int | None = None  # first step whose loss was not finite
    clean_times: list[float] = field(default_factory=list)  # step times before the fault step
    extra: dict[str, Any] = field(default_factory=dict)


def read_outcome(outcome: Outcome, fault: str, source: Path, fault_step: int) -> dict[str, Any]:
    """The table's columns from what the user saw."""
    said = outcome.said.lower()
    layer_class = outcome.extra.get("layer_class", "").lower()
    names_layer = FAULT_LAYER[fault].lower() in said or bool(layer_class and layer_class in said)
    names_op = any(re.search(rf"\b{op}", said) for op in FAULT_OPS[fault])
    line = fault_lines(source)[fault]
    seen = outcome.text + "\n" + outcome.said
    points = bool(re.search(rf'{re.escape(source.name)}"?(?:, line |:){line}\b', seen))
    delay = None if outcome.step is None else (outcome.step - fault_step if outcome.step >= 0 else None)
    if outcome.step is not None and 0 <= outcome.step < fault_step:
        delay = None
    return {
        "found": outcome.found,
        "step": outcome.step,
        "at_build": outcome.step == -1,
        "delay_steps": delay,
        "names_layer": bool(names_layer) and outcome.found,
        "names_op": names_op and outcome.found,
        "points_at_line": points and outcome.found,
        "message": outcome.message[:400],
        "said": outcome.said[:3000],
        "loss_nonfinite_step": outcome.loss_nonfinite_step,
        "clean_times": list(outcome.clean_times),
        "source": f"{source.name}:{line}",
        **{k: v for k, v in outcome.extra.items() if k != "layer_class"},
    }


def first_line(text: str) -> str:
    """The line that says what went wrong: the first, or when that only introduces (TensorFlow's "Graph
    execution error:"), the first line after it that is not a node name, stack or file line."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    if lines[0].endswith(":"):
        skip = ("Detected at node", "<stack", "File ", "The op is created", "Traceback", "Stack trace", "[[")
        said = next((line for line in lines[1:] if not line.startswith(skip)), "")
        return f"{lines[0]} {said}".strip()
    return lines[0]


def before_fault(metrics: dict[str, Any], fault_step: int) -> bool:
    """The tool stopped training before the fault acted: the tool itself failed (check_numerics under
    XLA has no kernel there, for one), it found nothing."""
    step = metrics.get("step")
    return bool(metrics.get("found")) and step is not None and 0 <= step < fault_step


def fault_step(fault: str) -> int:
    """The first step the fault acts in: a wrong dtype is there from the first step."""
    return 0 if fault == "dtype" else FAULT_STEP


def step_count(fault: str) -> int:
    """Steps a case runs when nothing stops it: the shape fault's partial batch is the last one."""
    return FAULT_STEP + 1 if fault == "shape" else FAULT_STEP + AFTER_STEPS


def gradient_scale(step: int) -> float:
    """The exploding-gradient fault's backward factor at `step`: 1 before the fault step, then 1e10,
    1e20, 1e30 and inf (float32 overflows)."""
    if step < FAULT_STEP:
        return 1.0
    exponent = 10 * (step - FAULT_STEP + 1)
    return float("inf") if exponent > 38 else 10.0**exponent


def planted_wiring(
    wiring: list[tuple[str, tuple[str, ...]]], after: str, planted: str
) -> list[tuple[str, tuple[str, ...]]]:
    """The twin's wiring with `planted` inserted after the node `after`: its consumers read the planted
    layer instead."""
    out = []
    for name, sources in wiring:
        out.append((name, tuple(planted if s == after else s for s in sources)))
        if name == after:
            out.append((planted, (after,)))
    return out


def first_nonfinite(
    order: list[str],
    activation_ok: dict[str, bool],
    gradient_ok: dict[str, bool | None],
    consumers: dict[str, list[str]],
) -> tuple[str, str] | None:
    """bakeoff's finder on one step: the first layer (in execution order) whose output is not finite, else
    the layer whose backward first made a gradient non-finite (walking from the loss: the first activation
    whose gradient is non-finite was given it by the layer that consumes it). (layer, 'activation' or
    'gradient'), or None when every value is finite."""
    for name in order:
        if not activation_ok[name]:
            return name, "activation"
    for name in reversed(order):
        if gradient_ok.get(name) is False:
            return (consumers.get(name) or ["the loss"])[0], "gradient"
    return None


def consumers_of(wiring: list[tuple[str, tuple[str, ...]]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, sources in wiring:
        for source in sources:
            out.setdefault(source, []).append(name)
    return out


def overheads(rows: list[tuple[str, str, list[float]]]) -> dict[tuple[str, str], float | None]:
    """(tool, mode) -> median clean step time with the tool over the same without one. `rows` holds
    (tool, mode, clean step times) of the numeric faults' cases (the steps before the fault step, where
    no fault acts yet, the first left out) and of run_functions_eagerly's."""
    import numpy as np

    clean: dict[tuple[str, str], list[float]] = {}
    for tool, mode, times in rows:
        clean.setdefault((tool, mode), []).extend(times)
    out: dict[tuple[str, str], float | None] = {}
    for (tool, mode), times in clean.items():
        base = clean.get(("none", mode), [])
        out[(tool, mode)] = float(np.median(times) / np.median(base)) if times and base else None
    return out
