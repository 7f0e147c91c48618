/* disk: a virtio-blk workload for detvm's block and snapshot tests. Hart 0 finds the first
   virtio-blk device among the eight virtio-mmio transports (version 2), negotiates VERSION_1,
   sets up one 16-entry split queue, asks for its serial (GET_ID) and reads the first 256 KiB
   into a copy it keeps in RAM (the disk may hold an earlier run's data). Then it keeps four
   requests in flight for ever: writes of 4 KiB blocks with contents derived from the request
   number, reads that check what comes back against that copy, and a flush
   every 16th request. Completions arrive as PLIC interrupts; the handler retires the used
   entries and refills the slots. Every 256 requests it prints "disk: N requests, read hash X",
   the sum of a hash of each read's data and number, the same whatever order requests complete in. Any error prints a line and powers off with a failure code. */
#include "virt.h"

#define VIRTIO_BASE 0x10001000u
#define VIRTIO_STRIDE 0x1000u
#define VIRTIO_COUNT 8u
#define VREG(base, off) (*(volatile unsigned *)((base) + (off)))
#define V_MAGIC 0x000u
#define V_VERSION 0x004u
#define V_DEVICE_ID 0x008u
#define V_DEVICE_FEATURES 0x010u
#define V_DEVICE_FEATURES_SEL 0x014u
#define V_DRIVER_FEATURES 0x020u
#define V_DRIVER_FEATURES_SEL 0x024u
#define V_QUEUE_SEL 0x030u
#define V_QUEUE_NUM_MAX 0x034u
#define V_QUEUE_NUM 0x038u
#define V_QUEUE_READY 0x044u
#define V_QUEUE_NOTIFY 0x050u
#define V_INTERRUPT_STATUS 0x060u
#define V_INTERRUPT_ACK 0x064u
#define V_STATUS 0x070u
#define V_QUEUE_DESC_LOW 0x080u
#define V_QUEUE_DESC_HIGH 0x084u
#define V_QUEUE_AVAIL_LOW 0x090u
#define V_QUEUE_AVAIL_HIGH 0x094u
#define V_QUEUE_USED_LOW 0x0a0u
#define V_QUEUE_USED_HIGH 0x0a4u
#define V_CONFIG 0x100u

#define PLIC_BASE 0x0c000000u
#define PLIC_PRIORITY(irq) (*(volatile unsigned *)(PLIC_BASE + 4u * (irq)))
#define PLIC_ENABLE0 (*(volatile unsigned *)(PLIC_BASE + 0x2000u))
#define PLIC_THRESHOLD0 (*(volatile unsigned *)(PLIC_BASE + 0x200000u))
#define PLIC_CLAIM0 (*(volatile unsigned *)(PLIC_BASE + 0x200004u))
#define MIP_MEIP (1u << 11)

#define QN 16u
#define SLOTS 4u
#define BLOCK 4096u
#define BLOCKS 64u /* the guest works on the first 256 KiB of the disk */
#define T_IN 0u
#define T_OUT 1u
#define T_FLUSH 4u
#define T_GET_ID 8u
#define F_NEXT 1u
#define F_WRITE 2u

struct desc { unsigned addr_lo, addr_hi, len; unsigned short flags, next; };
struct outhdr { unsigned type, ioprio, sector_lo, sector_hi; };
struct slot { struct outhdr hdr; unsigned char status; unsigned req; unsigned type; unsigned block; unsigned expect; };

static struct desc descs[QN] __attribute__((aligned(16)));
static volatile unsigned short avail[2 + QN + 1] __attribute__((aligned(4)));
static volatile unsigned used[1 + 2 * QN + 1] __attribute__((aligned(4)));
static unsigned char data[SLOTS][BLOCK] __attribute__((aligned(16)));
static struct slot slots[SLOTS];
static unsigned char mirror[BLOCKS][BLOCK] __attribute__((aligned(4)));
static unsigned base, irq, next_req, done, sum;
static unsigned short last_used;
static char serial[24];

static void fail(const char *what, unsigned a, unsigned b) {
  uart_puts("disk: ");
  uart_puts(what);
  uart_puts(" 0x");
  uart_puthex(a);
  uart_puts(" 0x");
  uart_puthex(b);
  uart_puts("\r\n");
  power_off((2u << 16) | FINISHER_FAIL);
}

/* FNV-1a over 32-bit words: cheap enough that the disk, not the CPU, sets the pace. */
static unsigned hash32(unsigned h, const unsigned char *p, unsigned n) {
  const unsigned *w = (const unsigned *)p;
  for (unsigned i = 0; i < n / 4u; i++) h = (h ^ w[i]) * 0x01000193u;
  return h;
}

static unsigned mix(unsigned x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  return x ^ (x >> 16);
}

static void fill(unsigned char *p, unsigned req) {
  unsigned v = mix(req);
  for (unsigned i = 0; i < BLOCK; i += 4) {
    v = v * 1664525u + 1013904223u;
    p[i] = (unsigned char)v;
    p[i + 1] = (unsigned char)(v >> 8);
    p[i + 2] = (unsigned char)(v >> 16);
    p[i + 3] = (unsigned char)(v >> 24);
  }
}

/* Chain the slot's descriptors: header, optional data (device-writable for reads), status. */
static void chain(unsigned s, unsigned data_len, int data_writable) {
  struct desc *d = &descs[3u * s];
  d[0] = (struct desc){ (unsigned)&slots[s].hdr, 0, sizeof(struct outhdr), F_NEXT, (unsigned short)(3u * s + 1u) };
  unsigned short st = (unsigned short)(3u * s + 1u);
  if (data_len != 0) {
    d[1] = (struct desc){ (unsigned)data[s], 0, data_len, (unsigned short)(F_NEXT | (data_writable ? F_WRITE : 0u)),
                          (unsigned short)(3u * s + 2u) };
    st = (unsigned short)(3u * s + 2u);
  } else {
    d[0].next = st;
  }
  descs[st] = (struct desc){ (unsigned)&slots[s].status, 0, 1, F_WRITE, 0 };
}

static void submit(unsigned s, unsigned type, unsigned sector, unsigned data_len, int data_writable) {
  struct slot *sl = &slots[s];
  sl->hdr = (struct outhdr){ type, 0, sector, 0 };
  sl->status = 0xff;
  sl->type = type;
  chain(s, data_len, data_writable);
  unsigned short idx = avail[1];
  avail[2 + idx % QN] = (unsigned short)(3u * s);
  __asm__ volatile("fence rw, rw");
  avail[1] = (unsigned short)(idx + 1u);
  __asm__ volatile("fence rw, rw");
  VREG(base, V_QUEUE_NOTIFY) = 0;
}

/* Request n: every 16th a flush, otherwise writes and reads of pseudo-random blocks. */
static void start_request(unsigned s) {
  unsigned n = next_req++;
  struct slot *sl = &slots[s];
  sl->req = n;
  if (n % 16u == 15u) {
    submit(s, T_FLUSH, 0, 0, 0);
    return;
  }
  unsigned block = mix(n * 2654435761u) % BLOCKS;
  sl->block = block;
  if (mix(n) % 3u == 0u) {
    fill(data[s], n);
    for (unsigned i = 0; i < BLOCK; i++) mirror[block][i] = data[s][i];
    submit(s, T_OUT, block * (BLOCK / 512u), BLOCK, 0);
  } else {
    /* Requests complete in submission order, so the read sees the mirror as it is now. */
    sl->expect = hash32(0x811c9dc5u, mirror[block], BLOCK);
    submit(s, T_IN, block * (BLOCK / 512u), BLOCK, 1);
  }
}

static void complete(unsigned s) {
  struct slot *sl = &slots[s];
  if (sl->status != 0) fail("request failed: request, status", sl->req, sl->status);
  if (sl->type == T_IN) {
    unsigned h = hash32(0x811c9dc5u, data[s], BLOCK);
    if (h != sl->expect) fail("data mismatch: request, block", sl->req, sl->block);
    /* A sum: the value does not depend on the order in which the same requests completed. */
    sum += mix(h ^ sl->req);
  }
  if (++done % 256u == 0u) {
    uart_puts("disk: ");
    uart_putu(done);
    uart_puts(" requests, read hash ");
    uart_puthex(sum);
    uart_puts("\r\n");
  }
  start_request(s);
}

static void drain_used(void) {
  for (unsigned guard = 0; guard < 4u * QN && last_used != (unsigned short)(used[0] >> 16); guard++) {
    unsigned id = used[1 + 2u * (last_used % QN)];
    last_used++;
    complete(id / 3u);
  }
}

void trap_handler(unsigned mcause, unsigned mepc, unsigned mtval) {
  if (mcause == 0x8000000bu) {
    unsigned claimed = PLIC_CLAIM0;
    unsigned isr = VREG(base, V_INTERRUPT_STATUS);
    VREG(base, V_INTERRUPT_ACK) = isr;
    if (isr & 2u) fail("device needs reset: status", VREG(base, V_STATUS), 0);
    drain_used();
    PLIC_CLAIM0 = claimed;
    return;
  }
  uart_puts("disk: unexpected trap mcause=0x");
  uart_puthex(mcause);
  uart_puts(" mepc=0x");
  uart_puthex(mepc);
  uart_puts(" mtval=0x");
  uart_puthex(mtval);
  uart_puts("\r\n");
  power_off((1u << 16) | FINISHER_FAIL);
}

static unsigned find_device(void) {
  for (unsigned i = 0; i < VIRTIO_COUNT; i++) {
    unsigned b = VIRTIO_BASE + i * VIRTIO_STRIDE;
    if (VREG(b, V_MAGIC) == 0x74726976u && VREG(b, V_VERSION) == 2u && VREG(b, V_DEVICE_ID) == 2u) {
      irq = 1u + i;
      return b;
    }
  }
  fail("no virtio-blk device (version 2) found", 0, 0);
  return 0;
}

static void init_device(void) {
  VREG(base, V_STATUS) = 0;
  VREG(base, V_STATUS) = 1u | 2u;
  VREG(base, V_DEVICE_FEATURES_SEL) = 1;
  if ((VREG(base, V_DEVICE_FEATURES) & 1u) == 0) fail("device lacks VIRTIO_F_VERSION_1", 0, 0);
  VREG(base, V_DRIVER_FEATURES_SEL) = 0;
  VREG(base, V_DRIVER_FEATURES) = 0;
  VREG(base, V_DRIVER_FEATURES_SEL) = 1;
  VREG(base, V_DRIVER_FEATURES) = 1; /* VERSION_1 */
  VREG(base, V_STATUS) = 1u | 2u | 8u;
  if ((VREG(base, V_STATUS) & 8u) == 0) fail("features not accepted", 0, 0);
  VREG(base, V_QUEUE_SEL) = 0;
  if (VREG(base, V_QUEUE_NUM_MAX) < QN) fail("queue too small", VREG(base, V_QUEUE_NUM_MAX), QN);
  VREG(base, V_QUEUE_NUM) = QN;
  VREG(base, V_QUEUE_DESC_LOW) = (unsigned)descs;
  VREG(base, V_QUEUE_DESC_HIGH) = 0;
  VREG(base, V_QUEUE_AVAIL_LOW) = (unsigned)avail;
  VREG(base, V_QUEUE_AVAIL_HIGH) = 0;
  VREG(base, V_QUEUE_USED_LOW) = (unsigned)used;
  VREG(base, V_QUEUE_USED_HIGH) = 0;
  VREG(base, V_QUEUE_READY) = 1;
  VREG(base, V_STATUS) = 1u | 2u | 8u | 4u;
}

/* One request on slot 0, polled (before interrupts are on). */
static void polled(unsigned type, unsigned sector, unsigned len) {
  submit(0, type, sector, len, 1);
  for (unsigned guard = 0; (unsigned short)(used[0] >> 16) == last_used; guard++) {
    if (guard > 100000000u) fail("polled request did not complete: type", type, 0);
  }
  last_used++;
  VREG(base, V_INTERRUPT_ACK) = VREG(base, V_INTERRUPT_STATUS);
  if (slots[0].status != 0) fail("polled request failed: type, status", type, slots[0].status);
}

static void get_id(void) {
  polled(T_GET_ID, 0, 20);
  for (unsigned i = 0; i < 20; i++) serial[i] = (char)data[0][i];
}

/* Learn what the disk holds (it may come from an earlier run): the mirror starts as a copy. */
static void load_mirror(void) {
  for (unsigned b = 0; b < BLOCKS; b++) {
    polled(T_IN, b * (BLOCK / 512u), BLOCK);
    for (unsigned i = 0; i < BLOCK; i++) mirror[b][i] = data[0][i];
  }
}

void main(unsigned hart) {
  if (hart != 0) {
    for (;;) __asm__ volatile("wfi");
  }
  base = find_device();
  init_device();
  get_id();
  unsigned capacity = VREG(base, V_CONFIG);
  if (VREG(base, V_CONFIG + 4u) == 0 && capacity < BLOCKS * (BLOCK / 512u)) fail("disk too small: sectors", capacity, 0);
  uart_puts("disk: virtio-blk at 0x");
  uart_puthex(base);
  uart_puts(" irq ");
  uart_putu(irq);
  uart_puts(", ");
  uart_putu(capacity);
  uart_puts(" sectors, serial '");
  uart_puts(serial);
  uart_puts("'\r\n");
  load_mirror();
  PLIC_PRIORITY(irq) = 1;
  PLIC_THRESHOLD0 = 0;
  PLIC_ENABLE0 = 1u << irq;
  csr_set(mie, MIP_MEIP);
  /* Fill the slots first: the handler refills them, so it must not run in the middle. */
  for (unsigned s = 0; s < SLOTS; s++) start_request(s);
  csr_set(mstatus, MSTATUS_MIE);
  for (;;) __asm__ volatile("wfi");
}
