// RISC-V architectural constants used by the RV32 target: CSR numbers, mstatus and mip bits,
// exception and interrupt causes. Names and values follow QEMU's target/riscv/cpu_bits.h.

// Machine-mode CSRs implemented by detvm.
export const CSR_MSTATUS = 0x300;
export const CSR_MISA = 0x301;
export const CSR_MIE = 0x304;
export const CSR_MTVEC = 0x305;
export const CSR_MSTATUSH = 0x310;
export const CSR_MCOUNTINHIBIT = 0x320;
export const CSR_MHPMEVENT3 = 0x323;
export const CSR_MHPMEVENT31 = 0x33f;
export const CSR_MSCRATCH = 0x340;
export const CSR_MEPC = 0x341;
export const CSR_MCAUSE = 0x342;
export const CSR_MTVAL = 0x343;
export const CSR_MIP = 0x344;
export const CSR_PMPCFG0 = 0x3a0;
export const CSR_PMPCFG3 = 0x3a3;
export const CSR_PMPADDR0 = 0x3b0;
export const CSR_PMPADDR15 = 0x3bf;
export const CSR_MCYCLE = 0xb00;
export const CSR_MINSTRET = 0xb02;
export const CSR_MHPMCOUNTER3 = 0xb03;
export const CSR_MHPMCOUNTER31 = 0xb1f;
export const CSR_MCYCLEH = 0xb80;
export const CSR_MINSTRETH = 0xb82;
export const CSR_MHPMCOUNTER3H = 0xb83;
export const CSR_MHPMCOUNTER31H = 0xb9f;
export const CSR_CYCLE = 0xc00;
export const CSR_TIME = 0xc01;
export const CSR_INSTRET = 0xc02;
export const CSR_HPMCOUNTER3 = 0xc03;
export const CSR_HPMCOUNTER31 = 0xc1f;
export const CSR_CYCLEH = 0xc80;
export const CSR_TIMEH = 0xc81;
export const CSR_INSTRETH = 0xc82;
export const CSR_HPMCOUNTER3H = 0xc83;
export const CSR_HPMCOUNTER31H = 0xc9f;
export const CSR_MVENDORID = 0xf11;
export const CSR_MARCHID = 0xf12;
export const CSR_MIMPID = 0xf13;
export const CSR_MHARTID = 0xf14;
export const CSR_MCONFIGPTR = 0xf15;

// mstatus fields. With only M-mode, MIE and MPIE are the writable bits and MPP reads as M (3).
export const MSTATUS_MIE = 1 << 3;
export const MSTATUS_MPIE = 1 << 7;
export const MSTATUS_MPP = 3 << 11;
export const MSTATUS_WRITABLE = MSTATUS_MIE | MSTATUS_MPIE;

// Interrupt numbers (QEMU IRQ_M_*), which are also their mip/mie bit positions and causes.
export const IRQ_M_SOFT = 3;
export const IRQ_M_TIMER = 7;
export const IRQ_M_EXT = 11;
export const MIP_MSIP = 1 << IRQ_M_SOFT;
export const MIP_MTIP = 1 << IRQ_M_TIMER;
export const MIP_MEIP = 1 << IRQ_M_EXT;
/** The mie bits that exist on an M-mode-only hart (QEMU M_MODE_INTERRUPTS). */
export const M_MODE_INTERRUPTS = MIP_MSIP | MIP_MTIP | MIP_MEIP;
/** What QEMU 7.2's `info registers` ORs into mideleg when the hart has the H extension. */
export const HS_MODE_INTERRUPTS = 0x1444;

// Synchronous exception causes (QEMU RISCV_EXCP_*).
export const RISCV_EXCP_INST_ADDR_MIS = 0;
export const RISCV_EXCP_INST_ACCESS_FAULT = 1;
export const RISCV_EXCP_ILLEGAL_INST = 2;
export const RISCV_EXCP_BREAKPOINT = 3;
export const RISCV_EXCP_LOAD_ADDR_MIS = 4;
export const RISCV_EXCP_LOAD_ACCESS_FAULT = 5;
export const RISCV_EXCP_STORE_AMO_ADDR_MIS = 6;
export const RISCV_EXCP_STORE_AMO_ACCESS_FAULT = 7;
export const RISCV_EXCP_M_ECALL = 11;

/** mcause bit 31: the trap was an interrupt. */
export const MCAUSE_INTERRUPT = 0x8000_0000;

/**
 * misa for detvm's hart: MXL=1 (RV32) with I, M and A. QEMU 7.2's default rv32 CPU reports
 * 0x401411ad (MXL=1 with A, C, D, F, H, I, M, S, U); detvm implements fewer extensions.
 */
export const MISA_RV32IMA = 0x4000_1101;

/** QEMU's reset vector for virt harts (the MROM at 0x1000). */
export const DEFAULT_RSTVEC = 0x1000;
