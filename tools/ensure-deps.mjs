// Installs the locked dependencies when node_modules is missing or older than
// package-lock.json, so `npm run demo` and `npm test` work on a fresh clone with nothing
// run before them. Quiet when they are current. Plain Node: it runs before any dependency.
// npm writes node_modules/.package-lock.json on every install, so its age is the install's.
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const lock = join(root, 'package-lock.json');
const installed = join(root, 'node_modules', '.package-lock.json');

if (!existsSync(installed) || statSync(installed).mtimeMs < statSync(lock).mtimeMs) {
  console.error(
    existsSync(installed)
      ? 'dependencies: package-lock.json is newer than node_modules, running npm ci'
      : 'dependencies: none installed yet, running npm ci',
  );
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  execFileSync(npm, ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
}
