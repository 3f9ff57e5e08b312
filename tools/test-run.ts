// `npm test` and `npm run test:unit`. Unit tests need no service and run alone. The full
// run owns its data (see isolated-run.ts): a redis-server, a PostgreSQL database, a Kafka
// topic and writer group of its own.
// Arguments other than `unit` pick test files by a part of their path
// (`npm test -- faults/crash`), with the same isolation.
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { isolatedRun } from './isolated-run.js';

process.env.NODE_ENV ??= 'test';
const tier = process.argv[2] === 'unit' ? 'unit' : 'all';
const only = tier === 'all' ? process.argv.slice(2) : [];
const testRoot = join(import.meta.dirname, '..', 'test');

function testFiles(dir: string): string[] {
  return readdirSync(dir)
    .flatMap((name) => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) return testFiles(path);
      return name.endsWith('.test.js') ? [path] : [];
    })
    .sort();
}

function runTests(files: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--test', '--test-concurrency=1', ...files], {
      env,
      stdio: 'inherit',
    });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

if (tier === 'unit') {
  process.exitCode = await runTests(testFiles(join(testRoot, 'unit')), process.env);
} else {
  const run = await isolatedRun('test', { ownRedis: true, log: (l) => console.log(l) });
  try {
    const files = testFiles(testRoot).filter(
      (f) => only.length === 0 || only.some((part) => relative(testRoot, f).includes(part)),
    );
    console.log(`${files.length} test files: ${files.map((f) => relative(testRoot, f)).join(' ')}`);
    process.exitCode = await runTests(files, { ...process.env, ...run.env });
  } finally {
    await run.close();
  }
}
