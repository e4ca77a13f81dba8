"""Seeded noise for Piper (VITS) voices: the same text gives the same audio in every run.

A Piper voice draws Gaussian noise inside its ONNX graph (RandomNormalLike nodes: the stochastic
duration predictor's noise, scaled by noise_w, and the prior's sample, scaled by noise_scale).
onnxruntime seeds that generator once per process from the clock and then advances it on every
inference, so the same sentence came out different in each process and after every other sentence
(other durations, other words heard by the recognizer).

`seed_noise_inputs` rewrites the graph in memory so each RandomNormalLike node takes its noise from a
new graph input instead (tiled along every axis if shorter, then cut to the shape of the node's
input). `noise_feeds` fills those inputs from a generator seeded with a hash of what is being spoken
(phoneme ids, scales, speaker): standard normal noise, as before, but a function of the input.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

NOISE_OP = "RandomNormalLike"
OTHER_RANDOM_OPS = frozenset({"RandomNormal", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli"})
FRAMES_PER_PHONEME_ID = 16
"""Noise frames drawn per phoneme id: the last axis is phoneme ids (duration predictor) or spectrogram
frames (3-6 per id in practice); a longer utterance reuses the noise from the start (tiling)."""
MIN_FRAMES = 64
CHANNELS = 256
"""Channels drawn per frame: at least the voice's (2 for the duration predictor, 192 for the prior);
the graph uses the first ones."""


@dataclass(frozen=True)
class NoiseInput:
    """A graph input that replaced one RandomNormalLike node."""

    name: str
    mean: float
    scale: float


def seed_noise_inputs(model: Any) -> list[NoiseInput]:
    """Rewrite `model` (an onnx.ModelProto, changed in place): each float RandomNormalLike node
    becomes Slice(Tile(new input)); returns the new inputs in graph order.

    Piper voices (VITS) draw rank-3 noise, [batch, channels, time]; the new inputs have that rank.
    No shape inference or model check here (they cost a second per load): onnxruntime checks the
    graph when it builds the session, and a voice of another layout fails at the first sentence
    (Services.prewarm speaks one), not silently."""
    from onnx import TensorProto, helper

    graph = model.graph
    new_nodes: list[Any] = []
    inputs: list[NoiseInput] = []
    for node in graph.node:
        if node.op_type in OTHER_RANDOM_OPS:
            log.warning("piper voice has a %s node (%s): its output may differ between runs", node.op_type, node.name)
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type != NOISE_OP or attrs.get("dtype", TensorProto.FLOAT) != TensorProto.FLOAT:
            if node.op_type == NOISE_OP:
                log.warning("piper voice: %s node %s (not float) left as it is: its output may differ "
                            "between runs", NOISE_OP, node.name)
            new_nodes.append(node)
            continue
        name = f"seeded_noise_{len(inputs)}"
        graph.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, f"{name}_c", f"{name}_t"]))
        inputs.append(NoiseInput(name, float(attrs.get("mean", 0.0)), float(attrs.get("scale", 1.0))))
        new_nodes.extend(_tile_and_cut(helper, name, node.input[0], node.output[0]))
    del graph.node[:]
    graph.node.extend(new_nodes)
    return inputs


def _tile_and_cut(helper: Any, noise: str, like: str, output: str) -> list[Any]:
    """Nodes computing `output` = noise tiled up to at least the shape of `like`, cut to that shape."""
    p = f"/{noise}"
    return [
        helper.make_node("Shape", [like], [f"{p}/want"]),
        helper.make_node("Shape", [noise], [f"{p}/have"]),
        helper.make_node("Constant", [], [f"{p}/one"], value=helper.make_tensor(f"{p}/one_v", 7, [], [1])),
        helper.make_node("Constant", [], [f"{p}/zero"], value=helper.make_tensor(f"{p}/zero_v", 7, [], [0])),
        helper.make_node("Add", [f"{p}/want", f"{p}/have"], [f"{p}/sum"]),
        helper.make_node("Sub", [f"{p}/sum", f"{p}/one"], [f"{p}/sum1"]),
        helper.make_node("Div", [f"{p}/sum1", f"{p}/have"], [f"{p}/repeats"]),  # ceil(want / have)
        helper.make_node("Tile", [noise, f"{p}/repeats"], [f"{p}/tiled"]),
        helper.make_node("Mul", [f"{p}/want", f"{p}/zero"], [f"{p}/starts"]),
        helper.make_node("Slice", [f"{p}/tiled", f"{p}/starts", f"{p}/want"], [output]),
    ]


def noise_feeds(inputs: list[NoiseInput], phoneme_ids: list[int], scales: np.ndarray,
                speaker_id: int | None) -> dict[str, np.ndarray]:
    """Noise for each input, drawn from a generator seeded by what is spoken and how.

    Frame t's noise is the t-th block of CHANNELS draws, so it does not depend on how many frames
    are drawn."""
    digest = hashlib.sha256()
    digest.update(np.asarray(phoneme_ids, dtype="<i8").tobytes())
    digest.update(np.asarray(scales, dtype="<f4").tobytes())
    digest.update(b"" if speaker_id is None else int(speaker_id).to_bytes(8, "little", signed=True))
    seed = int.from_bytes(digest.digest()[:8], "little")
    feeds = {}
    for index, item in enumerate(inputs):
        frames = max(MIN_FRAMES, FRAMES_PER_PHONEME_ID * len(phoneme_ids))
        rng = np.random.default_rng([seed, index])
        draws = rng.standard_normal((frames, CHANNELS), dtype=np.float32).T
        feeds[item.name] = np.ascontiguousarray(item.mean + item.scale * draws, dtype=np.float32)[np.newaxis]
    return feeds
