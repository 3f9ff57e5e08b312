// The live sale page: one hand-written HTML file beside this module (its style and script
// inline, no build step), read once and served from memory. Its Content-Security-Policy
// allows exactly that style and that script (by hash) and requests to this origin only, so
// nothing injected into a SKU's name could run even if the page rendered it as markup.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** Compiled to dist/src/live/; the page stays in src/live/ (like lua/ for the scripts). */
const PAGE_FILE = new URL('../../../src/live/page.html', import.meta.url);

export interface LivePage {
  html: string;
  headers: Record<string, string>;
}

const hashes = (html: string, tag: 'script' | 'style') =>
  [...html.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g'))]
    .map((m) => `'sha256-${createHash('sha256').update(m[1]!).digest('base64')}'`)
    .join(' ');

export function loadLivePage(file: URL = PAGE_FILE): LivePage {
  const html = readFileSync(file, 'utf8');
  const csp = [
    "default-src 'none'",
    `script-src ${hashes(html, 'script')}`,
    `style-src ${hashes(html, 'style')}`,
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  return {
    html,
    headers: {
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Security-Policy': csp,
      'Cache-Control': 'no-cache',
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
    },
  };
}
