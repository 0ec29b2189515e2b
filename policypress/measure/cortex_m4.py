"""One inference on a Cortex-M4, without the hardware: the executed instructions, and the cycles
they take by the processor's published timings.

The ELF that `flash_bytes` measures (the policy linked for a Cortex-M4F) runs in unicorn (QEMU's
CPU emulation, Cortex-M4 model with its FPU) from `pp_act`'s entry to its return, on one
observation. Each executed basic block is counted, capstone names its instructions, and the
Cortex-M4 Technical Reference Manual's instruction timings (ARM DDI 0439B, section 3.3.1; the
FPU's in Table 7-1) turn the counts into cycles. Assumptions, stated because the TRM's numbers
depend on them:
- zero-wait-state memory for code and data, no caches (an STM32L4 at 80 MHz has a flash
  accelerator that comes close for straight-line code; flash wait states add cycles this model
  does not see);
- a pipeline refill after a taken branch costs P = 2 cycles (the TRM: 1 to 3, by the target's
  alignment and width and whether the address was speculated early);
- a single load or store right after a single load in the same block costs 1 cycle less (the
  TRM, section 3.3.2: neighbouring loads pipeline unless the second's address depends on the
  first, which is not told apart here); a single store takes 1 cycle (`STR Rx,[Ry,#imm]` always
  does; register-offset stores are counted the same);
- result-use stalls (a floating-point result consumed by the next instruction, an address
  computed by the previous one: one cycle each) are not counted, nor IT folding (IT counts 1);
- divisions take their worst case (SDIV/UDIV 12 cycles, VDIV/VSQRT 14);
- instructions an IT block skips are counted, and charged, as executed (the TRM: a skipped
  instruction takes its issue cycle; the rest is overcounted, a few percent at most here);
- unaligned word loads (an int8 row whose length is not a multiple of 4) are charged as aligned
  ones, though the hardware takes an extra cycle or two; unicorn does not fault on them either.
The count is exactly repeatable: the same ELF and observation give the same numbers on any host.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from pathlib import Path

import numpy as np

# The board class the microseconds stand for; cycles are reported too, so any clock applies.
CLOCK_HZ = 80_000_000
BOARD = "an STM32L4-class Cortex-M4F at 80 MHz"
REFILL = 2  # P: cycles to refill the pipeline after a taken branch

# Mnemonic -> (class, cycles). Loads and stores of several registers cost 1 + N; see `cycles`.
_ONE = {"alu": "mov movw movt mvn add addw adc sub subw sbc rsb and orr orn eor bic lsl lsr asr ror rrx cmp cmn tst "
               "teq it nop adr uxtb uxth sxtb sxth uxtab uxtah sxtab sxtah ubfx sbfx bfi bfc clz rbit rev rev16 "
               "revsh sxtb16 uxtb16 sxtab16 uxtab16 pkhbt pkhtb ssat usat ssat16 usat16 qadd qsub qdadd qdsub qadd16 "
               "qsub16 qadd8 qsub8 sadd16 ssub16 sadd8 ssub8 uadd16 usub16 uadd8 usub8 shadd16 sasx ssax sel",
        "multiply": "mul mla mls smull umull smlal umlal smulbb smulbt smultb smultt smulwb smulwt smlabb smlabt "
                    "smlatb smlatt smlawb smlawt smlad smladx smlsd smlsdx smuad smuadx smusd smusdx smlald smlaldx "
                    "smlsld smmul smmulr smmla smmlar smmls smmlsr umaal",
        "fpu": "vadd vsub vmul vnmul vabs vneg vcmp vcmpe vmov vcvt vcvtr vmrs vmsr"}
TIMINGS: dict[str, tuple[str, int]] = {m: (cls, 1) for cls, names in _ONE.items() for m in names.split()}
TIMINGS.update({m: ("multiply", 12) for m in ("sdiv", "udiv")})
TIMINGS.update({m: ("fpu", 3) for m in ("vmla", "vmls", "vnmla", "vnmls", "vfma", "vfms", "vfnma", "vfnms")})
TIMINGS.update({m: ("fpu", 14) for m in ("vdiv", "vsqrt")})
TIMINGS.update({m: ("fpu", 2) for m in ("vldr", "vstr")})
TIMINGS.update({m: ("load_store", 2) for m in ("ldr", "ldrb", "ldrh", "ldrsb", "ldrsh")})
TIMINGS.update({m: ("load_store", 1) for m in ("str", "strb", "strh")})
TIMINGS.update({m: ("load_store", 1) for m in ("ldrd", "strd", "ldm", "ldmia", "ldmdb", "stm", "stmia", "stmdb",
                                               "push", "pop")})  # 1 + N
TIMINGS.update({m: ("fpu", 1) for m in ("vldm", "vldmia", "vldmdb", "vstm", "vstmia", "vstmdb", "vpush", "vpop")})
TIMINGS.update({m: ("branch", 1) for m in ("b", "bl", "bx", "blx", "cbz", "cbnz")})  # + P when taken
CLASSES = ("alu", "load_store", "multiply", "fpu", "branch")
_CONDITIONS = ("eq", "ne", "cs", "hs", "cc", "lo", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt", "gt", "le", "al")
_SINGLE_LOADS = {"ldr", "ldrb", "ldrh", "ldrsb", "ldrsh"}
_CORE_REGISTER = re.compile(r"\b(r\d+|ip|fp|sb|sl|lr)\b")
_MULTIPLE = {"ldrd", "strd", "ldm", "ldmia", "ldmdb", "stm", "stmia", "stmdb", "push", "pop",
             "vldm", "vldmia", "vldmdb", "vstm", "vstmia", "vstmdb", "vpush", "vpop"}

# Where the emulated program's stack, buffers and return trap live (Code and SRAM regions of the
# Cortex-M memory map: 0x40000000 and above is peripheral space, which may not execute).
STACK_TOP, STACK_SIZE = 0x20080000, 0x10000
BUFFERS, BUFFERS_SIZE = 0x20100000, 0x100000
RETURN_TRAP = 0x00F00000
MAX_INSTRUCTIONS = 500_000_000  # a policy that runs longer has a bug, not a cost


class M4Error(RuntimeError):
    """The emulated program did not run to its return, or executed an instruction without a timing."""


def base_mnemonic(mnemonic: str) -> str:
    """The TIMINGS key of a capstone mnemonic: width (.w, .n) and data type (.f32) dropped, then a
    condition code (from an IT block or a conditional branch) and the flag-setting s, as needed."""
    name = mnemonic.split(".")[0]
    if re.fullmatch(r"it[te]{0,3}", name):  # IT, ITT, ITE, ... one instruction
        return "it"
    candidates = [name]
    if name[-2:] in _CONDITIONS:
        candidates.append(name[:-2])
    candidates += [c[:-1] for c in list(candidates) if c.endswith("s")]
    for candidate in candidates:
        if candidate in TIMINGS:
            return candidate
    raise M4Error(f"no Cortex-M4 timing for the instruction {mnemonic!r}")


@dataclasses.dataclass
class Instruction:
    name: str  # the TIMINGS key
    cycles: int  # without a taken branch's refill
    loads_pc: bool


@dataclasses.dataclass
class Block:
    instructions: list[Instruction]
    cycles: int  # the block's instructions, loads pipelined, a final branch as not taken
    ends_in_branch: bool


def _registers(op_str: str) -> int:
    """Words moved by a register list ({r4, r5, pc}, {s0-s3}; a double register {d8} is two)."""
    inside = op_str[op_str.index("{") + 1:op_str.index("}")]
    count = 0
    for item in inside.split(","):
        bounds = re.findall(r"\d+", item)
        registers = int(bounds[1]) - int(bounds[0]) + 1 if "-" in item else 1
        count += registers * (2 if item.strip().startswith("d") else 1)
    return count


@functools.cache
def _disassembler():
    import capstone

    return capstone.Cs(capstone.CS_ARCH_ARM, capstone.CS_MODE_THUMB | capstone.CS_MODE_MCLASS)


def decode_block(code: bytes, address: int) -> Block:
    """Time one basic block: every instruction's cycles, single loads and stores pipelined."""
    instructions, cycles, after_load = [], 0, False
    for insn in _disassembler().disasm(code, address):
        name = base_mnemonic(insn.mnemonic)
        cost = TIMINGS[name][1]
        if name in _MULTIPLE:
            cost += _registers(insn.op_str) if "{" in insn.op_str else 2  # ldrd/strd: two words
        if name == "vmov" and _CORE_REGISTER.search(insn.op_str) and re.search(r"\b[sd]\d", insn.op_str):
            cost = 2  # between core and floating-point registers
        if name in ("vldr", "vstr") and re.match(r"d\d", insn.op_str):
            cost = 3  # a double word
        loads_pc = (name in ("pop", "ldr", "ldm", "ldmia", "ldmdb")
                    and re.search(r"\bpc\b", insn.op_str.split("[")[0]) is not None)
        if after_load and not loads_pc and (name in _SINGLE_LOADS or name in ("str", "strb", "strh")):
            cost = max(1, cost - 1)
        instructions.append(Instruction(name, cost, loads_pc))
        cycles += cost
        after_load = name in _SINGLE_LOADS
    if not instructions:
        raise M4Error(f"no instruction decoded at {address:#x}")
    last = instructions[-1]
    return Block(instructions, cycles, TIMINGS[last.name][0] == "branch" or last.loads_pc)


@dataclasses.dataclass
class M4Execution:
    """One call on the emulated Cortex-M4: what it computed and what it cost."""

    result: int  # r0 at return (pp_forward's pointer to its output)
    buffers: list[int]  # where the call's buffers lie, in order
    memory: object  # the emulator, to read results from
    instructions: dict[str, int]
    cycles: int

    def floats(self, address: int, count: int) -> np.ndarray:
        return np.frombuffer(bytes(self.memory.mem_read(address, 4 * count)), dtype=np.float32).copy()


class CortexM4:
    """The policy's Cortex-M4 ELF, loaded in an emulated Cortex-M4F, ready for calls."""

    def __init__(self, elf: str | Path):
        from elftools.elf.elffile import ELFFile

        with open(elf, "rb") as handle:
            image = ELFFile(handle)
            self.segments = [(s["p_vaddr"], s.data(), s["p_memsz"]) for s in image.iter_segments()
                             if s["p_type"] == "PT_LOAD"]
            symbols = image.get_section_by_name(".symtab")
            self.symbols = {s.name: s["st_value"] for s in symbols.iter_symbols() if s.name}

    def _machine(self):
        from unicorn import UC_ARCH_ARM, UC_MODE_MCLASS, UC_MODE_THUMB, Uc
        from unicorn.arm_const import UC_ARM_REG_C1_C0_2, UC_CPU_ARM_CORTEX_M4

        uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB | UC_MODE_MCLASS)
        uc.ctl_set_cpu_model(UC_CPU_ARM_CORTEX_M4)
        pages: list[list[int]] = []
        for start, _, size in self.segments:  # map the segments' pages, merging those they share
            low, high = start & ~0xFFF, (start + size + 0xFFF) & ~0xFFF
            if pages and low <= pages[-1][1]:
                pages[-1][1] = max(pages[-1][1], high)
            else:
                pages.append([low, high])
        for low, high in pages:
            uc.mem_map(low, high - low)
        for start, data, _ in self.segments:
            uc.mem_write(start, data)  # .bss stays zero, as the startup code would leave it
        uc.mem_map(STACK_TOP - STACK_SIZE, STACK_SIZE)
        uc.mem_map(BUFFERS, BUFFERS_SIZE)
        uc.mem_map(RETURN_TRAP, 0x1000)
        # CPACR: CP10 and CP11 on, as a board's startup code must do at 0xE000ED88 (unicorn's
        # M-profile runs floating-point instructions even without it)
        uc.reg_write(UC_ARM_REG_C1_C0_2, uc.reg_read(UC_ARM_REG_C1_C0_2) | (0xF << 20))
        return uc

    def call(self, function: str, *buffers: np.ndarray) -> M4Execution:
        """Call `function(buffer0, buffer1, ...)` (float arrays, passed as pointers in r0...) from a
        fresh machine; the buffers are copied in, one after another in the buffer region."""
        from unicorn import UC_HOOK_BLOCK, UcError
        from unicorn.arm_const import UC_ARM_REG_LR, UC_ARM_REG_PC, UC_ARM_REG_R0, UC_ARM_REG_SP

        if function not in self.symbols:
            raise M4Error(f"the ELF has no symbol {function}")
        uc = self._machine()
        addresses, address = [], BUFFERS
        for index, buffer in enumerate(buffers):
            data = np.ascontiguousarray(buffer, dtype=np.float32).tobytes()
            uc.mem_write(address, data)
            uc.reg_write(UC_ARM_REG_R0 + index, address)
            addresses.append(address)
            address += (len(data) + 7) & ~7
        uc.reg_write(UC_ARM_REG_SP, STACK_TOP)
        uc.reg_write(UC_ARM_REG_LR, RETURN_TRAP | 1)
        counts: dict[tuple[int, int], int] = {}
        taken: dict[tuple[int, int], int] = {}  # (block, size) -> how often control left it by a jump
        state = {"previous": None}

        def on_block(_uc, block_address, size, _data):
            key = (block_address, size)
            counts[key] = counts.get(key, 0) + 1
            previous = state["previous"]
            if previous is not None and block_address != previous[0] + previous[1]:
                taken[previous] = taken.get(previous, 0) + 1
            state["previous"] = key

        uc.hook_add(UC_HOOK_BLOCK, on_block)
        try:
            uc.emu_start(self.symbols[function] | 1, RETURN_TRAP, count=MAX_INSTRUCTIONS)
        except UcError as err:
            raise M4Error(f"{function} stopped at {uc.reg_read(UC_ARM_REG_PC):#x}: {err}") from err
        if uc.reg_read(UC_ARM_REG_PC) != RETURN_TRAP:
            raise M4Error(f"{function} did not return within {MAX_INSTRUCTIONS:,} instructions")
        last = state["previous"]
        taken[last] = taken.get(last, 0) + 1  # the return to the caller
        instructions = dict.fromkeys(CLASSES, 0)
        cycles = 0
        for (block_address, size), count in counts.items():
            block = decode_block(bytes(uc.mem_read(block_address, size)), block_address)
            jumps = taken.get((block_address, size), 0)
            if jumps and not block.ends_in_branch:
                raise M4Error(f"control left the block at {block_address:#x} without a branch")
            cycles += count * block.cycles + jumps * REFILL
            for insn in block.instructions:
                instructions[TIMINGS[insn.name][0]] += count
        return M4Execution(uc.reg_read(UC_ARM_REG_R0), addresses, uc, instructions, cycles)
