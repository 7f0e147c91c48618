#!/usr/bin/env node
// The `detvm` executable: registers tsx so the TypeScript sources run as they are, then starts
// the CLI in bin/main.ts.
import { register } from 'tsx/esm/api';

register();
await import('./main.ts');
