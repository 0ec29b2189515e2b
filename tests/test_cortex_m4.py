"""The embedded cost: the emulated Cortex-M4 ELF computes what the host build computes, its cycle
count repeats exactly, follows the manual's timings and scales with the MACs of a shrunk network;
the DSP and fp32 kernels against their limits; the CSR rule by cycles; the host C latency protocol."""

import logging
import subprocess

import numpy as np
import pytest
import torch
from torch import nn

from policypress.compress.architecture import uniformly_shrunk
from policypress.compress.quantization import quantized
from policypress.core.params import params
from policypress.core.policy import ActionHead, Policy, Preprocess
from policypress.measure.c_export import c_source, export_c
from policypress.measure.cortex_m4 import CLOCK_HZ, CortexM4, M4Error, base_mnemonic, decode_block
from policypress.measure.embedded import build_cortex_m4, build_host, embedded_metrics, run_binary
from tests.test_export import masked_mlp, random_states, trained, uneven_cnn  # noqa: F401 (a fixture)


def m4_and_host(policy, tmp_path):
    export_c(policy, tmp_path / "p.c")
    return CortexM4(build_cortex_m4(tmp_path / "p.c", tmp_path / "p.elf")), build_host(tmp_path / "p.c", tmp_path / "p")


def m4_run(m4: CortexM4, policy, obs: np.ndarray):
    forward = m4.call("pp_forward", obs)
    act = m4.call("pp_act", obs, np.zeros(policy.action_size, np.float32))
    return forward.floats(forward.result, policy.output_size), act.floats(act.buffers[1], policy.action_size), act


@pytest.mark.parametrize("variant", ["float", "csr", "int8", "cnn", "cnn int8", "uneven cnn"])
def test_emulated_cortex_m4_computes_exactly_what_the_host_build_computes(variant, trained, tmp_path):  # noqa: F811
    teacher, played = trained["cnn" if variant == "cnn" else "dqn"]
    policy = {"float": teacher, "csr": masked_mlp(0.1), "int8": quantized(teacher, played), "cnn": teacher,
              "cnn int8": quantized(teacher, played), "uneven cnn": uneven_cnn()}[variant]
    states = random_states(policy, 8)
    if policy.obs_shape == teacher.obs_shape:  # real states too, where they fit
        states = np.concatenate([played[:4], states[:4]])
    m4, host = m4_and_host(policy, tmp_path)
    outputs, actions = run_binary(host, states, policy.output_size, policy.action_size)
    for obs, output, action in zip(states, outputs, actions, strict=True):
        m4_output, m4_action, _ = m4_run(m4, policy, obs)
        np.testing.assert_array_equal(m4_output, output)  # the same IEEE arithmetic, bit for bit
        np.testing.assert_array_equal(m4_action, action)


def test_cycles_repeat_exactly_and_scale_with_the_macs_of_a_shrunk_network(tmp_path):
    policy = masked_mlp(1.0)
    obs = np.ones(32, np.float32)
    m4, _ = m4_and_host(policy, tmp_path)
    first, second = m4_run(m4, policy, obs)[2], m4_run(m4, policy, obs)[2]
    assert (first.cycles, first.instructions) == (second.cycles, second.instructions)
    shrunk = uniformly_shrunk(policy, params(policy)[1] // 4)  # hidden widths 128 -> about 55
    macs = {name: sum(layer.weight.numel() for layer in p.net if hasattr(layer, "weight"))
            for name, p in (("full", policy), ("shrunk", shrunk))}
    small = m4_run(m4_and_host(shrunk, tmp_path)[0], shrunk, obs)[2]
    per_mac = first.cycles / macs["full"], small.cycles / macs["shrunk"]
    assert macs["shrunk"] < macs["full"] / 3
    assert per_mac[1] == pytest.approx(per_mac[0], rel=0.15)  # the same kernel: cycles in proportion to MACs


def marginal_cycles_per_mac(dtype: str, tmp_path) -> float:
    """The dense kernel's cycles per MAC: a 256 -> 32 layer's cycles less a 256 -> 16 one's, over the MACs added."""
    obs = np.random.default_rng(0).normal(size=256).astype(np.float32)
    cycles = []
    for outputs in (16, 32):
        torch.manual_seed(0)
        policy = Policy(Preprocess((256,)), nn.Sequential(nn.Linear(256, outputs)), ActionHead("argmax", outputs),
                        "q_values")
        if dtype == "i8":
            policy = quantized(policy, obs[None])
        cycles.append(m4_run(m4_and_host(policy, tmp_path)[0], policy, obs)[2].cycles)
    return (cycles[1] - cycles[0]) / (256 * 16)


def test_the_int8_dsp_kernel_takes_fewer_cycles_per_mac_than_the_fp32_kernel(tmp_path):
    export_c(quantized(masked_mlp(1.0), np.ones((1, 32), np.float32)), tmp_path / "q.c")
    assert "__smlad" in (tmp_path / "q.c").read_text()
    f32, i8 = marginal_cycles_per_mac("f32", tmp_path), marginal_cycles_per_mac("i8", tmp_path)
    assert i8 < 0.75 * f32
    assert 1.75 < i8 < 2 * 1.75  # within twice the limit of SMLAD's loop (benchmarks/m4_kernels.py)
    assert 4.0 < f32 < 2 * 4.0  # and the fp32 kernel within twice its limit


@pytest.mark.parametrize("dtype", ["f32", "i8"])
@pytest.mark.parametrize("density, sparse_wins", [(0.1, True), (0.2, True), (0.6, False), (1.0, False)])
def test_the_csr_kernel_is_chosen_exactly_where_it_takes_fewer_cortex_m4_cycles(dtype, density, sparse_wins, tmp_path):
    obs = np.ones(32, np.float32)
    policy = masked_mlp(density) if dtype == "f32" else quantized(masked_mlp(density), obs[None])
    cycles = {}
    for storage in ("dense", "sparse"):
        export_c(policy, tmp_path / f"{storage}.c", storage=storage)
        m4 = CortexM4(build_cortex_m4(tmp_path / f"{storage}.c", tmp_path / f"{storage}.elf"))
        cycles[storage] = m4_run(m4, policy, obs)[2].cycles
    assert (cycles["sparse"] < cycles["dense"]) == sparse_wins
    assert {c.kernel for c in c_source(policy)[1]} == {f"{'sparse' if sparse_wins else 'dense'}_{dtype}"}


def test_embedded_metrics_report_m4_cycles_microseconds_and_cycles_per_mac(tmp_path):
    policy = masked_mlp(1.0)
    result = embedded_metrics(policy, tmp_path / "p.c", np.ones(32, np.float32), logging.getLogger("test"))
    macs = 32 * 128 + 128 * 128 + 128 * 4
    assert sum(kernel["macs"] for kernel in result["c_kernels"]) == macs
    assert result["m4_us"] == pytest.approx(result["m4_cycles"] / CLOCK_HZ * 1e6, abs=1e-3)
    assert result["m4_cycles_per_mac"] == pytest.approx(result["m4_cycles"] / macs, abs=1e-3)
    assert sum(result["m4_instructions"].values()) < result["m4_cycles"]  # loads, MACs and branches take more than 1
    assert result["m4_instructions"]["fpu"] >= macs  # one VMLA per MAC (and its loads)


def assembled(tmp_path, source: str) -> bytes:
    """Thumb-2 machine code of `source`, by the Cortex-M4 toolchain."""
    (tmp_path / "a.s").write_text(".syntax unified\n.thumb\n" + source + "\n")
    subprocess.run(["arm-none-eabi-as", "-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-o", str(tmp_path / "a.o"),
                    str(tmp_path / "a.s")], check=True)
    subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", "-j", ".text", str(tmp_path / "a.o"),
                    str(tmp_path / "a.bin")], check=True)
    return (tmp_path / "a.bin").read_bytes()


@pytest.mark.parametrize("source, cycles", [
    ("adds r0, r1\n mul r2, r3, r4\n mla r2, r3, r4, r5", 3),  # 1 each (the M4's, not the M3's MLA)
    ("ldr r0, [r1]\n ldr r2, [r3]\n ldr r4, [r5]", 4),  # neighbouring loads pipeline: N + 1
    ("ldr r0, [r1]\n adds r0, #1\n str r0, [r1]", 4),  # a load, an ALU op, a store
    ("push {r4, r5, r6, lr}\n ldrd r0, r1, [r2]", 8),  # 1 + N each
    ("vpush {d8-d9}\n vpop {s16}", 5 + 2),  # 1 + N words: a double register is two
    ("vldmia r0!, {s0-s3}\n vmla.f32 s4, s0, s1\n vadd.f32 s5, s4, s2\n vdiv.f32 s6, s5, s3", 5 + 3 + 1 + 14),
    ("sxtb16 r0, r1\n sxtb16 r2, r1, ror #8\n smlad r3, r0, r4, r3\n smlad r3, r2, r5, r3", 4),  # the DSP MAC
    ("vmov s0, r0\n vmov.f32 s1, s0", 3),  # core to FPU 2, FPU to FPU 1
])
def test_blocks_are_timed_by_the_cortex_m4_manual(source, cycles, tmp_path):
    assert decode_block(assembled(tmp_path, source), 0x1000).cycles == cycles


def test_a_call_charges_each_taken_branch_and_the_return_a_pipeline_refill(tmp_path):
    (tmp_path / "loop.s").write_text(".syntax unified\n.thumb\n.global loop\n.type loop, %function\n"
                                     "loop: movs r0, #10\n1: subs r0, #1\n bne 1b\n bx lr\n")
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-nostartfiles", "-nostdlib", "-Wl,--entry=loop",
                    "-o", str(tmp_path / "loop.elf"), str(tmp_path / "loop.s")], check=True)
    run = CortexM4(tmp_path / "loop.elf").call("loop")
    # movs; ten subs and bne, nine of them taken (1 + P); bx lr (1 + P); P = 2
    assert run.cycles == 1 + 10 * 2 + 9 * 2 + 1 + 2
    assert run.instructions == {"alu": 11, "load_store": 0, "multiply": 0, "fpu": 0, "branch": 11}


def test_mnemonics_lose_width_type_condition_and_flag_suffixes():
    assert [base_mnemonic(m) for m in ("ldr.w", "vmla.f32", "bne.n", "adds", "movgt", "bls", "smlad", "subs.w")] == \
        ["ldr", "vmla", "b", "add", "mov", "b", "smlad", "sub"]
    with pytest.raises(M4Error, match="no Cortex-M4 timing for the instruction 'tbb'"):
        base_mnemonic("tbb")


def test_host_c_latency_times_student_and_teacher_windows_in_turn(tmp_path, monkeypatch):
    from policypress.measure import latency

    policy = masked_mlp(1.0)
    small = uniformly_shrunk(policy, params(policy)[1] // 8)
    binaries = {}
    for name, p in (("student", small), ("teacher", policy)):
        export_c(p, tmp_path / f"{name}.c")
        binaries[name] = build_host(tmp_path / f"{name}.c", tmp_path / name)
    window = latency._c_window(binaries["student"], np.ones(32, np.float32).tobytes(), 50)
    assert window > 0  # the harness's timed loop: microseconds per call
    order = []
    real = latency._c_window
    monkeypatch.setattr(latency, "_c_window",
                        lambda binary, obs, calls: order.append(binary) or real(binary, obs, calls))
    result = latency.compare_c_latency(binaries["student"], binaries["teacher"], np.ones(32, np.float32), 2, 3, 1.0)
    assert order[2:] == [binaries["student"], binaries["teacher"]] * 3  # after one warm-up each, alternating
    assert result["c_speedup"] == result["teacher_c_us_median"] / result["c_us_median"]
    assert result["c_inferences_per_window"] >= latency.MIN_INFERENCES_PER_WINDOW
