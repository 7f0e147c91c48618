// The interpreter's out-of-line instructions: CSR access, LR/SC and AMOs, MRET, and loads and
// stores that miss the RAM fast path (MMIO, ROM, misaligned, unmapped). Mirrors
// target/riscv/op_helper.c (helper_csrrw, helper_mret) and insn_trans/trans_rva.c.inc.
// Each returns the next pc as an int32: pc + 4, or a trap handler's address.

import { AssertionError } from '../util/index.ts';
import {
  MEMTX_OK, addressSpaceLd, addressSpaceSt, ramFlushDecode, ramWatchReservation,
} from '../memory/index.ts';
import {
  MSTATUS_MIE, MSTATUS_MPIE, RISCV_EXCP_BREAKPOINT, RISCV_EXCP_ILLEGAL_INST,
  RISCV_EXCP_INST_ADDR_MIS, RISCV_EXCP_M_ECALL,
  RISCV_EXCP_LOAD_ACCESS_FAULT, RISCV_EXCP_LOAD_ADDR_MIS, RISCV_EXCP_STORE_AMO_ACCESS_FAULT,
  RISCV_EXCP_STORE_AMO_ADDR_MIS,
} from './cpu-bits.ts';
import type { CpuEnv, CpuState } from './cpu.ts';
import { raiseException } from './cpu-helper.ts';
import { csrExists, csrIsReadOnly, csrRead, csrWrite } from './csr.ts';
import { OP, csrInsnBits } from './decode.ts';

/**
 * Execute a Zicsr instruction. CSRRW/CSRRWI with rd = x0 do not read; CSRRS/CSRRC with rs1 = x0
 * and CSRRSI/CSRRCI with uimm = 0 do not write. A missing CSR, or a write to a read-only one,
 * is an illegal-instruction exception with the instruction bits in mtval.
 * @qemu target/riscv/op_helper.c helper_csrrw / helper_csrr (riscv_csrrw)
 */
export function helperCsr(
  cpu: CpuState, env: CpuEnv, op: number, rd: number, rs1: number, csr: number, pc: number,
): number {
  const isWrite = op === OP.CSRRW || op === OP.CSRRWI;
  const writes = isWrite || rs1 !== 0;
  const reads = !(isWrite && rd === 0);
  if (!csrExists(csr) || (writes && csrIsReadOnly(csr))) {
    return raiseException(cpu, RISCV_EXCP_ILLEGAL_INST, csrInsnBits(op, rd, rs1, csr), pc);
  }
  const old = reads ? csrRead(cpu, env, csr) : 0;
  if (writes) {
    const src = op >= OP.CSRRWI ? rs1 : cpu.x[rs1] ?? 0;
    let value: number;
    if (isWrite) value = src;
    else if (op === OP.CSRRS || op === OP.CSRRSI) value = old | src;
    else value = old & ~src;
    csrWrite(cpu, csr, value);
  }
  if (rd !== 0) cpu.x[rd] = old;
  return (pc + 4) | 0;
}

/**
 * MRET: pc = mepc, MIE = MPIE, MPIE = 1 (MPP stays M). A mepc that is not 4-byte aligned raises
 * an instruction-address-misaligned exception at the MRET, as QEMU 7.2 does without the C
 * extension (mtval = mepc here; QEMU leaves a stale value).
 * @qemu target/riscv/op_helper.c helper_mret
 */
export function helperMret(cpu: CpuState, pc: number): number {
  const target = cpu.mepc;
  if ((target & 3) !== 0) return raiseException(cpu, RISCV_EXCP_INST_ADDR_MIS, target, pc);
  const mpie = (cpu.mstatus & MSTATUS_MPIE) !== 0;
  cpu.mstatus = (cpu.mstatus & ~MSTATUS_MIE) | (mpie ? MSTATUS_MIE : 0) | MSTATUS_MPIE;
  return target | 0;
}

/**
 * A load that missed the fast path, performed through the address space (misaligned RAM loads
 * succeed, as in QEMU). Writes rd (if not x0) and returns pc + 4, or raises a load access fault
 * with mtval = the address.
 */
export function helperLoadSlow(
  cpu: CpuState, env: CpuEnv, op: number, rd: number, addr: number, pc: number,
): number {
  const size = op === OP.LB || op === OP.LBU ? 1 : op === OP.LH || op === OP.LHU ? 2 : 4;
  const raw = addressSpaceLd(env.as, addr, size);
  if (env.as.txResult !== MEMTX_OK) {
    return raiseException(cpu, RISCV_EXCP_LOAD_ACCESS_FAULT, addr, pc);
  }
  let v = raw | 0;
  if (op === OP.LB) v = (raw << 24) >> 24;
  else if (op === OP.LH) v = (raw << 16) >> 16;
  if (rd !== 0) cpu.x[rd] = v;
  return (pc + 4) | 0;
}

/** A store that missed the fast path; a store/AMO access fault if nothing takes it. */
export function helperStoreSlow(
  cpu: CpuState, env: CpuEnv, size: number, addr: number, value: number, pc: number,
): number {
  addressSpaceSt(env.as, addr, size, value);
  if (env.as.txResult !== MEMTX_OK) {
    return raiseException(cpu, RISCV_EXCP_STORE_AMO_ACCESS_FAULT, addr, pc);
  }
  return (pc + 4) | 0;
}

const LOAD_FAULT = RISCV_EXCP_LOAD_ACCESS_FAULT;
const STORE_FAULT = RISCV_EXCP_STORE_AMO_ACCESS_FAULT;

function amoCompute(op: number, old: number, src: number): number {
  switch (op) {
    case OP.AMOSWAP_W: return src;
    case OP.AMOADD_W: return (old + src) | 0;
    case OP.AMOXOR_W: return old ^ src;
    case OP.AMOAND_W: return old & src;
    case OP.AMOOR_W: return old | src;
    case OP.AMOMIN_W: return old < src ? old : src;
    case OP.AMOMAX_W: return old > src ? old : src;
    case OP.AMOMINU_W: return (old >>> 0) < (src >>> 0) ? old : src;
    case OP.AMOMAXU_W: return (old >>> 0) > (src >>> 0) ? old : src;
    default: throw new Error(`amoCompute: op ${op} is not an AMO`);
  }
}

/**
 * LR.W, SC.W and the AMO*.W instructions. They need 4-byte alignment (LR: load-address-
 * misaligned; SC/AMO: store/AMO-address-misaligned), except that an SC whose address is not the
 * reserved one fails (rd = 1) without touching memory, as in QEMU 7.2. The reservation is one
 * word per hart; SC clears it; any store to the word from any hart breaks it (ram.ts).
 * Access faults: LR a load fault, SC and AMOs a store/AMO fault.
 * @qemu target/riscv/insn_trans/trans_rva.c.inc gen_lr, gen_sc, gen_amo
 */
export function helperAtomic(
  cpu: CpuState, env: CpuEnv, op: number, rd: number, rs1: number, rs2: number, pc: number,
): number {
  const x = cpu.x;
  const addr = (x[rs1] ?? 0) >>> 0;
  const as = env.as;
  if (op === OP.SC_W) {
    if (cpu.resvAddr !== addr) {
      cpu.resvAddr = -1;
      if (rd !== 0) x[rd] = 1;
      return (pc + 4) | 0;
    }
    addressSpaceSt(as, addr, 4, x[rs2] ?? 0);
    if (as.txResult !== MEMTX_OK) return raiseException(cpu, STORE_FAULT, addr, pc);
    cpu.resvAddr = -1;
    if (rd !== 0) x[rd] = 0;
    return (pc + 4) | 0;
  }
  if (op === OP.LR_W) {
    if ((addr & 3) !== 0) return raiseException(cpu, RISCV_EXCP_LOAD_ADDR_MIS, addr, pc);
    const v = addressSpaceLd(as, addr, 4);
    if (as.txResult !== MEMTX_OK) return raiseException(cpu, LOAD_FAULT, addr, pc);
    cpu.resvAddr = addr;
    ramWatchReservation(as, addr);
    if (rd !== 0) x[rd] = v | 0;
    return (pc + 4) | 0;
  }
  if ((addr & 3) !== 0) return raiseException(cpu, RISCV_EXCP_STORE_AMO_ADDR_MIS, addr, pc);
  const old = addressSpaceLd(as, addr, 4) | 0;
  if (as.txResult !== MEMTX_OK) return raiseException(cpu, STORE_FAULT, addr, pc);
  const src = x[rs2] ?? 0; // read before rd is written: rd may equal rs2
  addressSpaceSt(as, addr, 4, amoCompute(op, old, src));
  if (as.txResult !== MEMTX_OK) return raiseException(cpu, STORE_FAULT, addr, pc);
  if (rd !== 0) x[rd] = old;
  return (pc + 4) | 0;
}

/**
 * The instructions cpuExec runs out of line: Zicsr, A, FENCE/FENCE.I (FENCE.I flushes the decode
 * cache), ECALL, EBREAK, MRET and illegal ones (mtval = `imm`, the decoder's tval). `w` and
 * `imm` are the decode-cache words. Returns the next pc.
 */
export function helperSystem(
  cpu: CpuState, env: CpuEnv, w: number, imm: number, pc: number,
): number {
  const op = w & 0xff;
  const rd = (w >> 8) & 31;
  const rs1 = (w >> 16) & 31;
  const rs2 = (w >> 24) & 31;
  switch (op) {
    case OP.CSRRW: case OP.CSRRS: case OP.CSRRC: case OP.CSRRWI: case OP.CSRRSI: case OP.CSRRCI:
      return helperCsr(cpu, env, op, rd, rs1, imm, pc);
    case OP.LR_W: case OP.SC_W: case OP.AMOSWAP_W: case OP.AMOADD_W: case OP.AMOXOR_W:
    case OP.AMOAND_W: case OP.AMOOR_W: case OP.AMOMIN_W: case OP.AMOMAX_W: case OP.AMOMINU_W:
    case OP.AMOMAXU_W:
      return helperAtomic(cpu, env, op, rd, rs1, rs2, pc);
    case OP.FENCE:
      return (pc + 4) | 0;
    case OP.FENCE_I:
      ramFlushDecode(env.as);
      return (pc + 4) | 0;
    case OP.ECALL:
      return raiseException(cpu, RISCV_EXCP_M_ECALL, 0, pc);
    case OP.EBREAK:
      return raiseException(cpu, RISCV_EXCP_BREAKPOINT, 0, pc);
    case OP.MRET:
      return helperMret(cpu, pc);
    case OP.ILLEGAL:
      return raiseException(cpu, RISCV_EXCP_ILLEGAL_INST, imm, pc);
    default:
      throw new AssertionError(`helperSystem: op ${op} at pc 0x${(pc >>> 0).toString(16)}`);
  }
}
