/* Common start-up for the C guests: per-hart stacks (4 KiB each, up to 8 harts; harts beyond
   that park), hart 0 clears .bss and releases the others, the trap vector saves the caller-saved
   registers and calls trap_handler(mcause, mepc, mtval), then main(hartid). */
    .section .text.start
    .globl _start
_start:
    csrr    a0, mhartid
    li      t0, 8
    bgeu    a0, t0, park
    la      sp, __stack_top
    slli    t0, a0, 12
    sub     sp, sp, t0
    la      t0, trap_entry
    csrw    mtvec, t0
    bnez    a0, wait_boot
    la      t0, __bss_start
    la      t1, __bss_end
1:  bgeu    t0, t1, 2f
    sw      zero, 0(t0)
    addi    t0, t0, 4
    j       1b
2:  fence   rw, rw
    li      t0, 1
    la      t1, boot_done
    sw      t0, 0(t1)
    j       run
wait_boot:
    la      t1, boot_done
3:  lw      t0, 0(t1)
    beqz    t0, 3b
    fence   rw, rw
run:
    csrr    a0, mhartid
    call    main
park:
    csrw    mie, zero
    wfi
    j       park

    .balign 4
trap_entry:
    addi    sp, sp, -64
    sw      ra, 0(sp)
    sw      t0, 4(sp)
    sw      t1, 8(sp)
    sw      t2, 12(sp)
    sw      a0, 16(sp)
    sw      a1, 20(sp)
    sw      a2, 24(sp)
    sw      a3, 28(sp)
    sw      a4, 32(sp)
    sw      a5, 36(sp)
    sw      a6, 40(sp)
    sw      a7, 44(sp)
    sw      t3, 48(sp)
    sw      t4, 52(sp)
    sw      t5, 56(sp)
    sw      t6, 60(sp)
    csrr    a0, mcause
    csrr    a1, mepc
    csrr    a2, mtval
    call    trap_handler
    lw      ra, 0(sp)
    lw      t0, 4(sp)
    lw      t1, 8(sp)
    lw      t2, 12(sp)
    lw      a0, 16(sp)
    lw      a1, 20(sp)
    lw      a2, 24(sp)
    lw      a3, 28(sp)
    lw      a4, 32(sp)
    lw      a5, 36(sp)
    lw      a6, 40(sp)
    lw      a7, 44(sp)
    lw      t3, 48(sp)
    lw      t4, 52(sp)
    lw      t5, 56(sp)
    lw      t6, 60(sp)
    addi    sp, sp, 64
    mret

    .data
    .balign 4
    .globl boot_done
boot_done:
    .word   0
