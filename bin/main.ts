// detvm command line (QEMU-style options). This first version knows -version and -h; the
// machine options arrive with the virt board (see `issues` 10 for the full CLI).
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
const args = process.argv.slice(2);

if (args.includes('-version') || args.includes('--version')) {
  process.stdout.write(`QEMU emulator version 7.2.22 (detvm ${pkg.version})\nCopyright (c) 2003-2022 Fabrice Bellard and the QEMU Project developers\n`);
  process.exit(0);
}
if (args.length === 0 || args.includes('-h') || args.includes('-help') || args.includes('--help')) {
  process.stdout.write(`usage: detvm [options]\n\n  -version    print the version and exit\n  -h          print this help and exit\n`);
  process.exit(0);
}
process.stderr.write(`detvm: ${args[0]}: invalid option\n`);
process.exit(1);
