#!/usr/bin/env node
// `flashsale-admin <command>` (also `npm run admin -- <command>`): the operators' routine
// actions over the engine's public REST API. `flashsale-admin --help` lists them.
import { main } from './commands.js';

process.exitCode = await main(process.argv.slice(2), process.env, process.stdout, process.stderr);
