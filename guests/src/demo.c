/* demo: the guest `npm start` boots. Hart 0 prints a banner; then every hart (up to 8) takes a
   CLINT timer interrupt every 100 ms of guest time and prints "tick N hart H" from its trap
   handler, sleeping in WFI in between (so an idle detvm warps virtual time to the next tick).
   A spinlock (AMOSWAP) keeps lines from different harts whole. Any other trap prints its cause
   and ends the run through sifive_test with a failure code. */
#include "virt.h"

#define TICK_PERIOD (MTIME_HZ / 10u) /* 100 ms */
#define MAX_HARTS 8

static volatile int print_lock;
static unsigned ticks[MAX_HARTS];
static unsigned long long next_deadline[MAX_HARTS];

static void lock(void) {
  while (__atomic_exchange_n(&print_lock, 1, __ATOMIC_ACQUIRE) != 0) {
  }
}

static void unlock(void) {
  __atomic_store_n(&print_lock, 0, __ATOMIC_RELEASE);
}

void trap_handler(unsigned mcause, unsigned mepc, unsigned mtval) {
  unsigned hart = csr_read(mhartid);
  if (mcause == 0x80000007u) {
    ticks[hart]++;
    next_deadline[hart] += TICK_PERIOD;
    mtimecmp_write(hart, next_deadline[hart]);
    lock();
    uart_puts("tick ");
    uart_putu(ticks[hart]);
    uart_puts(" hart ");
    uart_putu(hart);
    uart_puts("\r\n");
    unlock();
    return;
  }
  lock();
  uart_puts("demo: unexpected trap mcause=0x");
  uart_puthex(mcause);
  uart_puts(" mepc=0x");
  uart_puthex(mepc);
  uart_puts(" mtval=0x");
  uart_puthex(mtval);
  uart_puts("\r\n");
  unlock();
  power_off((1u << 16) | FINISHER_FAIL);
}

void main(unsigned hart) {
  if (hart == 0) {
    lock();
    uart_puts("detvm demo guest: riscv32 virt, one tick per hart every 100 ms\r\n");
    unlock();
  }
  next_deadline[hart] = mtime_read() + TICK_PERIOD;
  mtimecmp_write(hart, next_deadline[hart]);
  csr_set(mie, MIP_MTIP);
  csr_set(mstatus, MSTATUS_MIE);
  for (;;) __asm__ volatile("wfi");
}
