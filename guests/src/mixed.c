/* mixed: a CPU workload of loads and stores, multiplies and divides, branches and calls, for the
   benchmark and the CPU tests. Each of ROUNDS rounds sorts an LCG-filled array (insertion sort),
   takes a bitwise CRC-32 of it, multiplies two 12x12 matrices, sums quotients and remainders,
   and computes fib(15) recursively; all results fold into one checksum, printed as
   "mixed: checksum 0x%08x" before powering off through sifive_test (0x5555).
   test/guests/guests.test.ts recomputes the checksum in TypeScript. */
#include "virt.h"

#define ROUNDS 640
#define N 200
#define M 12

static unsigned arr[N];
static int ma[M][M], mb[M][M], mc[M][M];

static unsigned lcg(unsigned *s) {
  *s = *s * 1664525u + 1013904223u;
  return *s;
}

static void insertion_sort(unsigned *a, int n) {
  for (int i = 1; i < n; i++) {
    unsigned v = a[i];
    int j = i - 1;
    while (j >= 0 && a[j] > v) {
      a[j + 1] = a[j];
      j--;
    }
    a[j + 1] = v;
  }
}

static unsigned crc32(const unsigned char *p, int n) {
  unsigned crc = 0xffffffffu;
  for (int i = 0; i < n; i++) {
    crc ^= p[i];
    for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

static unsigned matmul(unsigned seed) {
  unsigned s = seed;
  for (int i = 0; i < M; i++) {
    for (int j = 0; j < M; j++) {
      ma[i][j] = (int)(lcg(&s) >> 20) - 2048;
      mb[i][j] = (int)(lcg(&s) >> 21) - 1024;
    }
  }
  unsigned h = 0;
  for (int i = 0; i < M; i++) {
    for (int j = 0; j < M; j++) {
      int acc = 0;
      for (int k = 0; k < M; k++) acc += ma[i][k] * mb[k][j];
      mc[i][j] = acc;
      h = h * 31u + (unsigned)acc;
    }
  }
  return h;
}

static unsigned divmix(unsigned seed) {
  unsigned s = seed, sum = 0;
  for (int i = 0; i < 300; i++) {
    int x = (int)lcg(&s);
    int y = (int)(lcg(&s) >> 24) - 128; /* includes 0: division by zero is defined on RISC-V */
    unsigned ux = lcg(&s), uy = lcg(&s) >> (i & 31);
    sum += (unsigned)(x / (y | 1)) + (unsigned)(x % (y | 1));
    sum ^= (uy != 0) ? ux / uy + ux % uy : ux;
  }
  return sum;
}

static unsigned fib(unsigned n) {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

void trap_handler(unsigned mcause, unsigned mepc, unsigned mtval) {
  uart_puts("mixed: unexpected trap mcause=0x");
  uart_puthex(mcause);
  uart_puts(" mepc=0x");
  uart_puthex(mepc);
  uart_puts(" mtval=0x");
  uart_puthex(mtval);
  uart_puts("\r\n");
  power_off((1u << 16) | FINISHER_FAIL);
}

void main(unsigned hart) {
  if (hart != 0) {
    for (;;) __asm__ volatile("wfi");
  }
  unsigned seed = 12345u, check = 0;
  for (int r = 0; r < ROUNDS; r++) {
    for (int i = 0; i < N; i++) arr[i] = lcg(&seed);
    insertion_sort(arr, N);
    check = check * 33u + crc32((const unsigned char *)arr, (int)sizeof arr);
    check = check * 33u + arr[r % N] + arr[N - 1 - r % N];
    check = check * 33u + matmul(seed);
    check = check * 33u + divmix(seed ^ (unsigned)r);
    check = check * 33u + fib(15u);
  }
  uart_puts("mixed: checksum 0x");
  uart_puthex(check);
  uart_puts("\r\n");
  power_off(FINISHER_PASS);
}
