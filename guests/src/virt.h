/* The virt board as detvm's guests see it: ns16550a UART, CLINT, sifive_test, plus tiny
   freestanding helpers (no libc). */
#ifndef DETVM_GUEST_VIRT_H
#define DETVM_GUEST_VIRT_H

#define UART_BASE 0x10000000u
#define UART_THR (*(volatile unsigned char *)(UART_BASE + 0))
#define UART_LSR (*(volatile unsigned char *)(UART_BASE + 5))
#define UART_LSR_THRE 0x20

#define CLINT_BASE 0x2000000u
#define CLINT_MSIP(h) (*(volatile unsigned *)(CLINT_BASE + 4u * (h)))
#define CLINT_MTIMECMP_LO(h) (*(volatile unsigned *)(CLINT_BASE + 0x4000u + 8u * (h)))
#define CLINT_MTIMECMP_HI(h) (*(volatile unsigned *)(CLINT_BASE + 0x4004u + 8u * (h)))
#define CLINT_MTIME_LO (*(volatile unsigned *)(CLINT_BASE + 0xbff8u))
#define CLINT_MTIME_HI (*(volatile unsigned *)(CLINT_BASE + 0xbffcu))
#define MTIME_HZ 10000000u

#define SIFIVE_TEST (*(volatile unsigned *)0x100000u)
#define FINISHER_PASS 0x5555u
#define FINISHER_FAIL 0x3333u

#define MIP_MTIP (1u << 7)
#define MSTATUS_MIE (1u << 3)

#define csr_read(csr) ({ unsigned __v; __asm__ volatile("csrr %0, " #csr : "=r"(__v)); __v; })
#define csr_set(csr, v) __asm__ volatile("csrs " #csr ", %0" : : "r"(v))
#define csr_clear(csr, v) __asm__ volatile("csrc " #csr ", %0" : : "r"(v))

static inline void uart_putc(char c) {
  while ((UART_LSR & UART_LSR_THRE) == 0) {
  }
  UART_THR = (unsigned char)c;
}

static inline void uart_puts(const char *s) {
  while (*s) uart_putc(*s++);
}

static inline void uart_putu(unsigned v) {
  char buf[11];
  int n = 0;
  do {
    buf[n++] = (char)('0' + v % 10u);
    v /= 10u;
  } while (v != 0);
  while (n > 0) uart_putc(buf[--n]);
}

static inline void uart_puthex(unsigned v) {
  for (int i = 7; i >= 0; i--) uart_putc("0123456789abcdef"[(v >> (4 * i)) & 15u]);
}

static inline unsigned long long mtime_read(void) {
  unsigned hi, lo;
  do {
    hi = CLINT_MTIME_HI;
    lo = CLINT_MTIME_LO;
  } while (hi != CLINT_MTIME_HI);
  return ((unsigned long long)hi << 32) | lo;
}

/* Program hart h's mtimecmp without a spurious early match (high word first to all-ones). */
static inline void mtimecmp_write(unsigned h, unsigned long long t) {
  CLINT_MTIMECMP_HI(h) = 0xffffffffu;
  CLINT_MTIMECMP_LO(h) = (unsigned)t;
  CLINT_MTIMECMP_HI(h) = (unsigned)(t >> 32);
}

static inline void power_off(unsigned code) {
  SIFIVE_TEST = code;
  for (;;) __asm__ volatile("wfi");
}

#endif
