"""ONNX and standalone C exports compute what the torch policy computes; int8 quantization.

Every variant of the format is exported: float, masked, structurally shrunk and int8, on MLP
and CNN policies with discrete and continuous actions, fed random and real (played) states.
"""

import logging
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from torch import nn

from policypress.compress.architecture import uniformly_shrunk
from policypress.compress.pruning import layerwise_magnitude_masks
from policypress.compress.quantization import quantized
from policypress.core.envs import make_env
from policypress.core.params import params
from policypress.core.policy import ActionHead, LayerQuant, Policy, PolicyFormatError, Preprocess
from policypress.measure.c_export import CExportError, c_source, export_c
from policypress.measure.embedded import (
    build_cortex_m4,
    build_host,
    cortex_m4_footprint,
    embedded_metrics,
    instruction_count,
    run_binary,
)
from policypress.measure.latency import session
from policypress.measure.metrics import storage_bytes
from policypress.measure.onnx_export import MAX_INTEGER_FAN_IN, OnnxExportError, export_onnx, policy_model
from tests.conftest import blink_spec, check, pendulum_spec
from tests.test_harness import run
from tests.test_metrics import cnn
from tests.test_policy import small_policy

MARGIN = 1e-4  # argmax is compared where the best output leads the runner-up by more than this


def played_states(policy: Policy, spec: dict, count: int, seed: int = 0) -> np.ndarray:
    """States the policy visits in its environment, taking a random action one step in four."""
    env, rng = make_env(spec), np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    states = []
    while len(states) < count:
        states.append(obs)
        action = env.action_space.sample() if rng.random() < 0.25 else policy.act(obs)
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            obs, _ = env.reset(seed=int(rng.integers(1000)))
    env.close()
    return np.asarray(states, dtype=np.float32)


def random_states(policy: Policy, count: int = 64) -> np.ndarray:
    rng = np.random.default_rng(1)
    if len(policy.obs_shape) == 3:
        return rng.integers(0, 256, (count, *policy.obs_shape)).astype(np.float32)
    return (rng.normal(size=(count, *policy.obs_shape)) * 2).astype(np.float32)


def assert_same_computation(policy: Policy, states: np.ndarray, outputs: np.ndarray, actions: np.ndarray):
    """Outputs within float tolerance, and the same actions."""
    with torch.no_grad():
        expected = policy(torch.as_tensor(states)).numpy()
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-5)
    expected_actions = policy.act(states)
    if policy.is_discrete:
        top2 = np.sort(expected, axis=1)[:, -2:]
        clear = top2[:, 1] - top2[:, 0] > MARGIN
        assert clear.mean() > 0.9  # the comparison is not vacuous
        np.testing.assert_array_equal(actions.reshape(-1)[clear], expected_actions[clear])
    else:
        np.testing.assert_allclose(actions.reshape(expected_actions.shape), expected_actions, rtol=1e-5, atol=1e-5)


def variants(policy: Policy, states: np.ndarray) -> dict[str, Policy]:
    """The policy as it is, masked at 70% sparsity, shrunk to a third, and int8 (of it and masked)."""
    masked = policy.clone()
    masked.masks = layerwise_magnitude_masks(masked, 0.7)
    masked.apply_masks()
    return {"float": policy, "masked": masked, "shrunk": uniformly_shrunk(policy, params(policy)[1] // 3),
            "int8": quantized(policy, states), "int8 masked": quantized(masked, states)}


def onnx_run(policy: Policy, states: np.ndarray, tmp_path) -> tuple[np.ndarray, np.ndarray]:
    actions, outputs = session(export_onnx(policy, tmp_path / "p.onnx")).run(None, {"obs": states})
    return outputs, actions


def c_run(policy: Policy, states: np.ndarray, tmp_path, storage: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    export_c(policy, tmp_path / "p.c", storage=storage)
    binary = build_host(tmp_path / "p.c", tmp_path / "p")
    return run_binary(binary, states, policy.output_size, policy.action_size)


@pytest.fixture(scope="module")
def trained(cartpole_teacher, cartpole_spec, pendulum_teacher, cnn_teacher):
    """(policy, real states) for a DQN MLP, a SAC actor (continuous) and a CNN."""
    cases = {}
    for name, directory, spec in [("dqn", cartpole_teacher, cartpole_spec), ("sac", pendulum_teacher, pendulum_spec()),
                                  ("cnn", cnn_teacher, blink_spec())]:
        policy = Policy.load(directory / "policy")
        cases[name] = (policy, played_states(policy, spec, 200))
    return cases


C_STORAGES = {"c": "auto", "c dense": "dense", "c sparse": "sparse"}


@pytest.mark.parametrize("case", ["dqn", "sac", "cnn"])
@pytest.mark.parametrize("export", ["onnx", *C_STORAGES])
def test_exports_compute_the_policy_on_real_and_random_states(trained, case, export, tmp_path):
    policy, real = trained[case]
    for variant, student in variants(policy, real).items():
        states = np.concatenate([real, random_states(student)])
        if export == "onnx":
            outputs, actions = onnx_run(student, states, tmp_path)
        else:
            outputs, actions = c_run(student, states, tmp_path, C_STORAGES[export])
        try:
            assert_same_computation(student, states, outputs, actions)
        except AssertionError as err:
            raise AssertionError(f"{case} {variant}: {err}") from err


def uneven_cnn() -> Policy:
    """Non-square kernels and strides: (2,9,7) -(3x2)/(2,1)-> (3,4,6) -(2x3)/(1,2)-> (4,3,2) -> 24 -> 3."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 3, (3, 2), stride=(2, 1)), nn.ReLU(), nn.Conv2d(3, 4, (2, 3), stride=(1, 2)),
                        nn.Tanh(), nn.Flatten(), nn.Linear(24, 3))
    return Policy(Preprocess((2, 9, 7), scale=1 / 255), net, ActionHead("argmax", 3), "q_values")


@pytest.mark.parametrize("make", [small_policy, lambda: small_policy("rescale"), lambda: small_policy("clip"), cnn,
                                  uneven_cnn], ids=["argmax", "rescale", "clip", "cnn", "uneven-cnn"])
def test_heads_preprocessing_and_layer_shapes_export_exactly_enough(make, tmp_path):
    policy = make()
    states = random_states(policy, 256)
    for student in (policy, quantized(policy, states)):
        assert_same_computation(student, states, *onnx_run(student, states, tmp_path))
        for storage in ("dense", "sparse"):
            assert_same_computation(student, states, *c_run(student, states, tmp_path, storage))


INTEGER_OPS = ("MatMulInteger", "ConvInteger")


def integer_operands(model: onnx.ModelProto) -> list[tuple[str, ...]]:
    """For every integer node: the element types of its activations, weights and both zero points."""
    initializers = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    producers = {node.output[0]: node for node in model.graph.node}
    operands = []
    for node in model.graph.node:
        if node.op_type in INTEGER_OPS:
            quantize = producers[node.input[0]]
            assert quantize.op_type == "QuantizeLinear"  # the activations' type is its zero point's
            weights = initializers[node.input[1]].dtype
            weight_zero_point = initializers[node.input[3]].dtype if len(node.input) > 3 else weights  # its default
            operands.append(tuple(str(dtype) for dtype in (initializers[quantize.input[2]].dtype, weights,
                                                           initializers[node.input[2]].dtype, weight_zero_point)))
    return operands


def fan_ins(model: onnx.ModelProto) -> list[int]:
    initializers = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return [initializers[node.input[1]].shape[0] if node.op_type == "MatMulInteger"
            else int(np.prod(initializers[node.input[1]].shape[1:]))
            for node in model.graph.node if node.op_type in INTEGER_OPS]


def int8_policies(trained) -> dict[str, tuple[Policy, np.ndarray]]:
    """Every int8 variant of the trained teachers and of the small nets, with the states to run."""
    cases = {}
    for case, (policy, real) in trained.items():
        for variant, student in variants(policy, real).items():
            if student.quant:
                cases[f"{case} {variant}"] = (student, np.concatenate([real, random_states(student)]))
    for name, make in [("small", small_policy), ("cnn", cnn), ("uneven cnn", uneven_cnn)]:
        states = random_states(make(), 256)
        cases[name] = (quantized(make(), states), states)
    return cases


def test_int8_layers_run_on_kernels_that_cannot_saturate(trained):
    """The bound that makes onnxruntime's integer kernels exact on every CPU, checked on the graph
    itself whatever the CPU running the test: activations and weights both uint8 (U8U8 kernels,
    whose products are widened to 16 bits and paired in int32; int8 weights would pair products in a
    saturating int16 on x86 without VNNI), and fan-ins whose raw sums fit int32."""
    for name, (student, _) in int8_policies(trained).items():
        model = policy_model(student)
        assert integer_operands(model) == [("uint8",) * 4] * len(student.quant), name
        assert max(fan_ins(model)) * 255 * 255 <= 2**31 - 1, name


def test_an_int8_layer_whose_int32_sum_could_overflow_is_refused():
    wide = MAX_INTEGER_FAN_IN + 1
    policy = Policy(Preprocess((wide,)), nn.Sequential(nn.Linear(wide, 1)), ActionHead("argmax", 1), "q_values")
    with pytest.raises(OnnxExportError, match=f"int8 layer 0 \\(Linear\\) has fan-in {wide}"):
        policy_model(quantized(policy, np.ones((1, wide), np.float32)))


def saturating_policy() -> tuple[Policy, np.ndarray]:
    """Weights of +-1 (codes +-127) on inputs near the top of their range (codes near 255): every
    pair of equal-signed products overflows int16 (2 x 255 x 127 = 64,770)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 8))
    with torch.no_grad():
        net[0].weight.copy_(torch.randint(0, 2, (8, 64)) * 2.0 - 1)
    policy = Policy(Preprocess((64,)), net, ActionHead("argmax", 8), "q_values")
    states = np.random.default_rng(0).uniform(0.8, 1.0, (256, 64)).astype(np.float32)
    states[0], states[1] = 0.0, 1.0  # the calibrated range: zero point 0, 1.0 at code 255
    return quantized(policy, states), states


def with_int8_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same layers in onnxruntime's U8S8 form (int8 weights, zero point 0): this exporter's
    graphs before it moved to uint8 weights."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    weights = {name for node in model.graph.node if node.op_type in INTEGER_OPS for name in node.input[1::2]}
    for tensor in model.graph.initializer:
        if tensor.name in weights:
            signed = (numpy_helper.to_array(tensor).astype(np.int16) - 128).astype(np.int8)
            tensor.CopyFrom(numpy_helper.from_array(signed, tensor.name))
    return model


EMULATED_CPU = "Haswell"  # AVX2 without AVX-512 or VNNI, as qemu emulates it


@pytest.mark.skipif(platform.machine() != "x86_64" or shutil.which("qemu-x86_64") is None,
                    reason="needs qemu-x86_64 (Debian's qemu-user) on an x86-64 host")
def test_int8_exports_are_exact_on_an_emulated_cpu_without_vnni(trained, tmp_path):
    """onnxruntime picks its kernels by the CPU's features, so the int8 graphs run under an emulated
    AVX2 CPU whatever the host has. The same layers with int8 weights must come out wrong there:
    the emulator does expose the saturating kernels, so the exact result is not vacuous."""
    cases = int8_policies(trained)
    cases["saturating"] = control, control_states = saturating_policy()
    models = [policy_model(student) for student, _ in cases.values()] + [with_int8_weights(policy_model(control))]
    paths = [tmp_path / f"m{i}.onnx" for i in range(len(models))]
    for path, model in zip(paths, models, strict=True):
        path.write_bytes(model.SerializeToString())
    states = [s for _, s in cases.values()] + [control_states]
    np.savez(tmp_path / "in.npz", **{f"m{i}": s for i, s in enumerate(states)})
    runner = Path(__file__).with_name("onnx_runner.py")
    subprocess.run(["qemu-x86_64", "-cpu", EMULATED_CPU, sys.executable, str(runner), str(tmp_path / "in.npz"),
                    str(tmp_path / "out.npz"), *map(str, paths)], check=True, capture_output=True)
    out = np.load(tmp_path / "out.npz")
    for i, (name, (student, case_states)) in enumerate(cases.items()):
        try:
            assert_same_computation(student, case_states, out[f"m{i}_1"], out[f"m{i}_0"])
        except AssertionError as err:
            raise AssertionError(f"{name} on {EMULATED_CPU}: {err}") from err
    with torch.no_grad():
        exact = control(torch.as_tensor(control_states)).numpy()
    assert np.mean(~np.isclose(out[f"m{len(cases)}_1"], exact, rtol=1e-5, atol=1e-5)) > 0.5


def test_int8_inputs_on_rounding_ties_round_half_to_even_everywhere(tmp_path):
    policy = Policy(Preprocess((8,)), nn.Sequential(nn.Linear(8, 8, bias=False)), ActionHead("argmax", 8), "q_values")
    quant = LayerQuant(8)
    quant.input_zero_point.fill_(10)
    with torch.no_grad():
        policy.net[0].weight.copy_(torch.eye(8))  # the outputs are the input codes minus the zero point
    student = Policy(policy.preprocess, policy.net, policy.head, policy.output, quant={"0": quant})
    ties = np.array([[0.5, 1.5, 2.5, -0.5, -1.5, 250.5, -10.5, 3.49]], dtype=np.float32)
    expected = np.array([[0, 2, 2, -0, -2, 245, -10, 3]], dtype=np.float32)  # clamped at 255 - 10 and 0 - 10
    with torch.no_grad():
        np.testing.assert_array_equal(student(torch.as_tensor(ties)).numpy(), expected)
    for outputs, _ in (onnx_run(student, ties, tmp_path), c_run(student, ties, tmp_path)):
        np.testing.assert_array_equal(outputs, expected)


def test_int8_arithmetic_is_the_documented_formula():
    torch.manual_seed(0)
    policy = Policy(Preprocess((4,)), nn.Sequential(nn.Linear(4, 3)), ActionHead("argmax", 3), "q_values")
    states = np.random.default_rng(0).normal(size=(100, 4)).astype(np.float32)
    student = quantized(policy, states)
    quant, layer = student.quant["0"], student.net[0]
    low, high = min(states.min(), 0.0), max(states.max(), 0.0)
    assert float(quant.input_scale) == pytest.approx((high - low) / 255)
    assert int(quant.input_zero_point) == round(-low / float(quant.input_scale))
    expected_scale = policy.net[0].weight.abs().amax(dim=1) / 127
    torch.testing.assert_close(quant.weight_scale, expected_scale)
    codes = layer.weight / quant.weight_scale[:, None]
    torch.testing.assert_close(codes, codes.round())  # stored weights lie on their int8 grid
    assert codes.abs().max() == 127
    x = torch.as_tensor(states[:5])
    q = torch.clamp(torch.round(x / quant.input_scale) + quant.input_zero_point, 0, 255) - quant.input_zero_point
    by_hand = (q @ codes.round().T) * (quant.input_scale * quant.weight_scale) + layer.bias
    with torch.no_grad():
        torch.testing.assert_close(student(x), by_hand)
    assert float(quant.input_codes(torch.zeros(1)) - quant.input_zero_point) == 0  # zero is exact


def test_int8_policy_round_trips_and_counts_its_bytes(tmp_path):
    policy = small_policy()
    student = quantized(policy, random_states(policy))
    student.save(tmp_path / "q")
    loaded = Policy.load(tmp_path / "q")
    assert set(loaded.quant) == {"1", "3"}
    states = torch.as_tensor(random_states(policy))
    with torch.no_grad():
        torch.testing.assert_close(loaded(states), student(states), rtol=0, atol=0)
    # int8 weights 6*3 + 2*6 = 30 bytes, fp32 biases (6 + 2) * 4 = 32, per layer (scales + input scale) * 4 + 1
    assert storage_bytes(loaded) == 30 + 32 + (6 + 1) * 4 + 1 + (2 + 1) * 4 + 1
    assert params(loaded) == params(policy)


def test_quantized_spec_must_name_a_weighted_layer_with_valid_scales():
    policy = small_policy()
    with pytest.raises(PolicyFormatError, match="layer 2 is not a Linear or Conv2d"):
        Policy(policy.preprocess, policy.net, policy.head, policy.output, quant={"2": LayerQuant(6)})
    spec = {**policy.spec(), "quantized": ["2"]}
    with pytest.raises(PolicyFormatError, match="layer 2 is not a Linear or Conv2d"):
        Policy.from_spec(spec)
    bad = LayerQuant(6)
    bad.input_zero_point.fill_(300)
    with pytest.raises(PolicyFormatError, match="zero point outside 0..255"):
        Policy(policy.preprocess, policy.net, policy.head, policy.output, quant={"1": bad})


def masked_mlp(density: float) -> Policy:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(32, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 4))
    policy = Policy(Preprocess((32,)), net, ActionHead("argmax", 4), "q_values",
                    {f"{i}.weight": torch.rand_like(net[i].weight) < density for i in (0, 2, 4)})
    policy.apply_masks()
    return policy


def test_kernel_choice_records_exact_byte_counts():
    policy = masked_mlp(0.3)
    _, choices = c_source(policy)
    hidden = choices[1]
    nonzero = int(torch.count_nonzero(policy.net[2].weight))
    assert hidden.dense_bytes == 128 * 128 * 4
    assert hidden.sparse_bytes == nonzero * (4 + 2) + (128 + 1) * 4
    assert [c.kernel for c in choices] == ["sparse_f32"] * 3
    assert [c.kernel for c in c_source(masked_mlp(0.55))[1]] == ["dense_f32"] * 3  # smaller, but slower
    int8 = quantized(masked_mlp(0.5), np.zeros((1, 32), np.float32) + 1)  # denser than the int8 break-even
    assert [c.kernel for c in c_source(int8)[1]] == ["dense_i8"] * 3
    very_sparse = quantized(masked_mlp(0.05), np.ones((1, 32), np.float32))
    assert [c.kernel for c in c_source(very_sparse)[1]] == ["sparse_i8"] * 3


def test_padded_convolution_is_refused_and_measured_without_embedded_metrics(tmp_path):
    policy = Policy(Preprocess((1, 4, 4)), nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Flatten(), nn.Linear(32, 2)),
                    ActionHead("argmax", 2), "q_values")
    with pytest.raises(CExportError, match=r"layer 0: Conv2d with padding \(1, 1\)"):
        c_source(policy)
    result = embedded_metrics(policy, tmp_path / "p.c", np.zeros((1, 4, 4), np.float32), logging.getLogger("test"))
    assert result["instructions"] is None and result["flash_bytes"] is None
    assert result["embedded_unavailable"].startswith("no C export: layer 0: Conv2d with padding")


def instructions(policy: Policy, tmp_path, storage: str = "auto") -> int:
    export_c(policy, tmp_path / f"{storage}.c", storage=storage)
    return instruction_count(build_host(tmp_path / f"{storage}.c", tmp_path / storage), np.ones(32, np.float32))


def test_instruction_counts_repeat_exactly_and_fall_when_shrunk(tmp_path):
    policy = masked_mlp(1.0)
    export_c(policy, tmp_path / "p.c")
    binary = build_host(tmp_path / "p.c", tmp_path / "p")
    first = instruction_count(binary, np.ones(32, np.float32))
    assert instruction_count(binary, np.ones(32, np.float32)) == first
    shrunk = uniformly_shrunk(policy, params(policy)[1] // 4)
    assert instructions(shrunk, tmp_path) < first / 2


def test_cortex_m4_footprint_counts_weights_and_buffers(tmp_path):
    policy = masked_mlp(1.0)
    export_c(policy, tmp_path / "f.c")
    export_c(quantized(policy, np.ones((1, 32), np.float32)), tmp_path / "q.c")
    float_size = cortex_m4_footprint(build_cortex_m4(tmp_path / "f.c", tmp_path / "f.elf"))
    int8_size = cortex_m4_footprint(build_cortex_m4(tmp_path / "q.c", tmp_path / "q.elf"))
    weights = 32 * 128 + 128 * 128 + 128 * 4
    assert float_size["flash_bytes"] > weights * 4 > int8_size["flash_bytes"] > weights
    assert float_size["ram_bytes"] >= 2 * 128 * 4  # two activation buffers of the widest layer
    assert int8_size["ram_bytes"] >= float_size["ram_bytes"] + 128 * 2  # plus the int16 input codes


@pytest.mark.parametrize("method", ["int8", "distill_int8"])
@pytest.mark.parametrize("case", ["dqn", "sac", "cnn"])
def test_int8_methods_quantize_every_weighted_layer_within_the_budget(method, case, trained, cartpole_spec,
                                                                      cartpole_teacher, pendulum_teacher,
                                                                      cnn_teacher, tmp_path):
    spec, teacher_dir = {"dqn": (cartpole_spec, cartpole_teacher), "sac": (pendulum_spec(), pendulum_teacher),
                         "cnn": (blink_spec(), cnn_teacher)}[case]
    result = run(method, spec, teacher_dir, tmp_path / method, level=0.3)
    check(result, tmp_path / method, level_ceiling_structural=False)  # weights may round to 0
    student = Policy.load(tmp_path / method / "policy")
    assert sorted(student.quant, key=int) == [str(i) for i, layer in enumerate(student.net)
                                             if isinstance(layer, (nn.Linear, nn.Conv2d))]
    teacher, states = trained[case]
    if method == "int8":  # the quantized teacher computes nearly what the teacher does on its states
        assert result["budget"]["used"]["gradient_updates"] == 0
        assert params(student)[0] == params(teacher)[0]
        with torch.no_grad():
            expected, got = teacher(torch.as_tensor(states)), student(torch.as_tensor(states))
        error = ((got - expected).abs().mean() / (expected.max() - expected.min())).item()
        assert error < 0.05
