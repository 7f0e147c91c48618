/* busyloop: 1e8 iterations of addi/addi/bnez (3e8 instructions), then power off through
   sifive_test (0x5555). Harts other than 0 park in WFI. The CPU benchmark runs this. */
    .section .text.start
    .globl _start
_start:
    csrr    a0, mhartid
    bnez    a0, park
    li      t0, 100000000
    li      t1, 0
1:  addi    t1, t1, 1
    addi    t0, t0, -1
    bnez    t0, 1b
    li      t2, 0x100000        /* sifive_test */
    li      t3, 0x5555          /* FINISHER_PASS: power off */
    sw      t3, 0(t2)
park:
    wfi
    j       park
