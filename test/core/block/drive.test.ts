// -drive parsing and drive creation with QEMU's error texts, node naming, format probing, and
// what `info block` / query-block show. Method: option strings against an in-memory file
// system on a bare loop machine; texts compared exactly.
import { describe, expect, it } from 'vitest';
import {
  blkAttachDev, blkIostatusEnable, blockSetIo, blockState, driveNew, driveParse, hmpInfoBlockText,
  memBlockFileProviderCreate, qcow2Create, qemuOptsSplit, qmpQueryBlock, qmpQueryNamedBlockNodes,
  bdrvAllCreateSnapshot, bdrvAllFindVmstateBs, bdrvCloseAll, blkDelete, sizeToStr,
} from '../../../core/block/index.ts';
import { loopMachineCreate, type LoopMachine } from '../../../core/loop/index.ts';

function setup(): LoopMachine {
  const m = loopMachineCreate({ seed: 7 });
  const p = memBlockFileProviderCreate();
  const f = p.create('d.qcow2');
  qcow2Create(f, { size: 64 << 20 });
  f.close();
  p.create('r.raw').pwrite(0, new Uint8Array(1000));
  blockSetIo(m, p);
  return m;
}

function drive(m: LoopMachine, text: string): string {
  const o = driveParse(text);
  if (!o.ok) return `parse: ${o.error}`;
  const d = driveNew(m, o.value);
  if (!d.ok) return d.error;
  return [d.value.blk.name, ...d.value.warnings].join('\n');
}

describe('-drive options', () => {
  it('split like QemuOpts: ",," is a comma, a bare key means on', () => {
    expect(qemuOptsSplit('file=a,,b.img,if=none,read-only')).toEqual([['file', 'a,b.img'], ['if', 'none'], ['read-only', 'on']]);
  });

  it('reject bad values with QEMU\'s texts', () => {
    const m = setup();
    expect(drive(m, 'file=d.qcow2,if=foo')).toBe("parse: unsupported bus type 'foo'");
    expect(drive(m, 'file=d.qcow2,read-only=maybe')).toBe("parse: Parameter 'read-only' expects 'on' or 'off'");
    expect(drive(m, 'file=d.qcow2,cache=fast')).toBe('parse: invalid cache option');
    expect(drive(m, 'file=d.qcow2,format=qcow2,foo=1')).toBe("Block format 'qcow2' does not support the option 'foo'");
    expect(drive(m, 'file=d.qcow2,readonly=on')).toBe("Block format 'qcow2' does not support the option 'readonly'");
    expect(blockState(m).nodes).toEqual([]);
    expect(drive(m, 'file=d.qcow2,id=9x')).toBe("parse: Parameter 'id' expects an identifier\nIdentifiers consist of letters, digits, '-', '.', '_', starting with a letter.");
    expect(drive(m, 'file=d.qcow2,werror=nope')).toBe("parse: 'nope' invalid write error action");
  });

  it('fail to open with QEMU\'s texts and leave nothing behind', () => {
    const m = setup();
    expect(drive(m, 'file=nope.qcow2,format=qcow2,if=none')).toBe("Could not open 'nope.qcow2': No such file or directory");
    expect(drive(m, 'file=d.qcow2,format=foo,if=none')).toBe("Unknown driver 'foo'");
    expect(drive(m, 'file=r.raw,format=qcow2,if=none')).toBe('Image is not in qcow2 format');
    expect(drive(m, 'file=d.qcow2,format=qcow2,if=ide')).toBe('machine type does not support if=ide,bus=0,unit=0');
    expect(drive(m, 'file=d.qcow2,node-name=1x')).toBe("Invalid node-name: '1x'");
    expect(blockState(m).nodes).toEqual([]);
    expect(blockState(m).backends).toEqual([]);
  });

  it('generate ids and node names as QEMU does; refuse duplicates', () => {
    const m = setup();
    expect(drive(m, 'file=d.qcow2,format=qcow2,if=none')).toBe('none0');
    expect(drive(m, 'if=none')).toBe('none1');
    expect(drive(m, 'file=d.qcow2,format=qcow2,if=none,id=d0,node-name=disk0')).toBe('d0');
    expect(drive(m, 'file=d.qcow2,format=qcow2,if=none,id=d0')).toBe("Duplicate ID 'd0' for drive");
    expect(drive(m, 'file=d.qcow2,format=qcow2,if=none,id=d1,node-name=disk0')).toBe("Duplicate nodes with node-name='disk0'");
    expect(drive(m, 'file=d.qcow2,format=qcow2,id=disk0')).toBe("Device name 'disk0' conflicts with an existing node name");
    const names = blockState(m).namedNodes.map((b) => b.nodeName);
    // The protocol node is named before its format node; "#block" + counter + two seeded digits.
    expect(names[0]).toMatch(/^#block0\d\d$/);
    expect(names[1]).toMatch(/^#block1\d\d$/);
    expect(names.slice(2)).toEqual([names[2], 'disk0']);
    expect(blockState(m).nodes.map((b) => b.drv.formatName)).toEqual(['qcow2', 'file', 'qcow2', 'file']);
  });

  it('probe the format and warn for raw, as QEMU does', () => {
    const m = setup();
    expect(drive(m, 'file=r.raw,if=none,id=r')).toBe(
      "r\nWARNING: Image format was not specified for 'r.raw' and probing guessed raw.\n"
      + '         Automatically detecting the format is dangerous for raw images, write operations on block 0 will be restricted.\n'
      + "         Specify the 'raw' format explicitly to remove the restrictions.",
    );
    expect(drive(m, 'file=d.qcow2,if=none,id=q')).toBe('q');
    expect(blockState(m).backends.map((b) => [b.root!.drv.formatName, b.root!.drv.getLength(b.root!)])).toEqual([['raw', 1024], ['qcow2', 64 << 20]]);
  });
});

describe('info block and query-block', () => {
  it('print each drive as print_block_info does', () => {
    const m = setup();
    drive(m, 'file=d.qcow2,format=qcow2,if=none,id=d0,node-name=disk0');
    drive(m, 'file=r.raw,format=raw,if=none,id=r0,node-name=raw0,read-only=on,cache=unsafe');
    drive(m, 'if=none,id=empty');
    const b = blockState(m).backends[0]!;
    blkAttachDev(b, '/machine/peripheral-anon/device[0]/virtio-backend');
    blkIostatusEnable(b);
    expect(hmpInfoBlockText(m)).toBe(
      'd0 (disk0): d.qcow2 (qcow2)\n'
      + '    Attached to:      /machine/peripheral-anon/device[0]/virtio-backend\n'
      + '    Cache mode:       writeback\n'
      + '\n'
      + 'r0 (raw0): r.raw (raw, read-only)\n'
      + '    Removable device: not locked, tray closed\n' // no device uses it
      + '    Cache mode:       writeback, ignore flushes\n'
      + '\n'
      + 'empty: [not inserted]\n'
      + '    Removable device: not locked, tray closed\n',
    );
    // QEMU prints the separating newline even when a device filter skipped the entries before.
    expect(hmpInfoBlockText(m, 'r0')).toBe(
      '\nr0 (raw0): r.raw (raw, read-only)\n    Removable device: not locked, tray closed\n    Cache mode:       writeback, ignore flushes\n',
    );
    expect(hmpInfoBlockText(m, 'disk0', true)).toBe('\ndisk0: d.qcow2 (qcow2)\n    Cache mode:       writeback\n');
    expect(blkAttachDev(b, 'other')).toEqual({ ok: false, errno: 22, error: "Drive 'd0' is already in use by another device" });
  });

  it('return query-block data with the image info and snapshots', () => {
    const m = setup();
    drive(m, 'file=d.qcow2,format=qcow2,if=none,id=d0,node-name=disk0');
    const vm = bdrvAllFindVmstateBs(m);
    if (!vm.ok) throw new Error(vm.error);
    bdrvAllCreateSnapshot(m, { idStr: '', name: 'snap0', vmStateSize: 0, dateSec: 1_767_225_600, dateNsec: 0, vmClockNsec: 1_500_000_000, icount: -1 }, vm.value, 4096);
    const [info] = qmpQueryBlock(m);
    expect(info).toMatchObject({
      device: 'd0', type: 'unknown', removable: true, locked: false, // no device attached
      inserted: {
        file: 'd.qcow2', 'node-name': 'disk0', ro: false, drv: 'qcow2', backing_file_depth: 0, encrypted: false,
        detect_zeroes: 'off', cache: { writeback: true, direct: false, 'no-flush': false }, write_threshold: 0,
        image: {
          filename: 'd.qcow2', format: 'qcow2', 'virtual-size': 64 << 20, 'cluster-size': 65536, 'dirty-flag': false,
          snapshots: [{ id: '1', name: 'snap0', 'vm-state-size': 4096, 'date-sec': 1_767_225_600, 'date-nsec': 0, 'vm-clock-sec': 1, 'vm-clock-nsec': 500_000_000 }],
          'format-specific': { type: 'qcow2', data: { compat: '1.1', 'compression-type': 'zlib', 'lazy-refcounts': false, 'refcount-bits': 16, corrupt: false, 'extended-l2': false } },
        },
      },
    });
    // Newest first, as bdrv_named_nodes_list prepends.
    expect(qmpQueryNamedBlockNodes(m).map((n) => n.drv)).toEqual(['qcow2', 'file']);
  });

  it('info block -v appends each image\'s description, with its snapshots, as qemu-img info prints it', () => {
    const m = setup();
    drive(m, 'file=d.qcow2,format=qcow2,if=none,id=d0,node-name=disk0');
    const vm = bdrvAllFindVmstateBs(m);
    if (!vm.ok) throw new Error(vm.error);
    bdrvAllCreateSnapshot(m, { idStr: '', name: 'snap0', vmStateSize: 0, dateSec: 1_767_225_600, dateNsec: 0, vmClockNsec: 1_500_000_000, icount: 42 }, vm.value, 0);
    const size = qmpQueryBlock(m)[0]!.inserted!.image['actual-size']!;
    expect(hmpInfoBlockText(m, null, false, true, 3600)).toBe(
      'd0 (disk0): d.qcow2 (qcow2)\n'
      + '    Removable device: not locked, tray closed\n'
      + '    Cache mode:       writeback\n'
      + '\nImages:\n'
      + 'image: d.qcow2\nfile format: qcow2\nvirtual size: 64 MiB (67108864 bytes)\n'
      + `disk size: ${sizeToStr(size)}\ncluster_size: 65536\n`
      + 'Snapshot list:\n'
      + 'ID        TAG               VM SIZE                DATE     VM CLOCK     ICOUNT\n'
      + '1         snap0                 0 B 2026-01-01 01:00:00 00:00:01.500         42\n'
      + 'Format specific information:\n    compat: 1.1\n    compression type: zlib\n    lazy refcounts: false\n'
      + '    refcount bits: 16\n    corrupt: false\n    extended l2: false\n',
    );
  });

  it('deleting drives closes their nodes; close-all leaves nothing open', () => {
    const m = setup();
    drive(m, 'file=d.qcow2,format=qcow2,if=none,id=d0');
    drive(m, 'file=r.raw,format=raw,if=none,id=r0');
    expect(blkDelete(m, blockState(m).backends[0]!)).toBe(0);
    expect(blockState(m).nodes.map((b) => b.drv.formatName)).toEqual(['raw', 'file']);
    expect(bdrvCloseAll(m)).toBe(0);
    expect([blockState(m).nodes, blockState(m).backends, blockState(m).namedNodes]).toEqual([[], [], []]);
    // The image can be opened again afterwards.
    expect(drive(m, 'file=d.qcow2,format=qcow2,if=none,id=d0')).toBe('d0');
  });
});
