// PostgreSQL text and jsonb cannot hold NUL (\u0000): keep it visible as the JSON escape it
// came as. Used wherever outside input is stored (parked events, incident details).
export function storableText(s: string): string {
  return s.replace(/\0/g, '\\u0000');
}

/** JSON for a jsonb column: every string in it made storable. */
export function storableJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'string' ? storableText(x) : x));
}
