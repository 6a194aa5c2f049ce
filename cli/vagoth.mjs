#!/usr/bin/env node
// The `vagoth` command: runs cli/main.ts through tsx's loader.
import { register } from 'tsx/esm/api';

register();
await import('./main.ts');
